using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Recsys.Cluster.Tests;

/// <summary>
/// One child process (redis-server or `recsys serve`) with its output kept for the test log.
/// Dispose kills it if it still runs, so a failing test leaves nothing behind.
/// </summary>
public sealed partial class SiloProcess : IDisposable
{
    private readonly Process _process;
    private readonly ConcurrentQueue<string> _output = new();

    private SiloProcess(string name, Process process, int httpPort, int siloPort)
    {
        Name = name;
        _process = process;
        HttpPort = httpPort;
        SiloPort = siloPort;
    }

    public string Name { get; }
    public int Pid => _process.Id;
    public int HttpPort { get; }
    public int SiloPort { get; }
    public bool HasExited => _process.HasExited;
    public int ExitCode => _process.ExitCode;

    public static SiloProcess Start(string name, string fileName, IEnumerable<string> arguments, int httpPort = 0, int siloPort = 0)
    {
        var info = new ProcessStartInfo(fileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string a in arguments) info.ArgumentList.Add(a);
        // The children must not pick up settings meant for the test run itself.
        foreach (string key in info.Environment.Keys.Where(k => k.StartsWith("RECSYS_", StringComparison.Ordinal)).ToList()) info.Environment.Remove(key);
        var process = new Process { StartInfo = info };
        var silo = new SiloProcess(name, process, httpPort, siloPort);
        process.OutputDataReceived += (_, e) => silo.Keep(e.Data);
        process.ErrorDataReceived += (_, e) => silo.Keep(e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return silo;
    }

    private void Keep(string? line)
    {
        if (line is null) return;
        _output.Enqueue(line);
        while (_output.Count > 400) _output.TryDequeue(out _);
    }

    public string OutputTail(int lines = 40) => string.Join(Environment.NewLine, _output.Where(l => !l.StartsWith("   at ", StringComparison.Ordinal)).TakeLast(lines).Select(l => $"  [{Name}] {(l.Length > 300 ? l[..300] + " ..." : l)}"));

    /// <summary>SIGKILL: the process gets no chance to checkpoint or say goodbye.</summary>
    public void Kill() => _process.Kill(entireProcessTree: true);

    /// <summary>SIGTERM: the host's graceful shutdown (Kestrel drains, the silo deactivates its grains and leaves).</summary>
    public void Terminate()
    {
        if (Kill(_process.Id, SigTerm) != 0) throw new InvalidOperationException($"kill -TERM {_process.Id} failed (errno {Marshal.GetLastPInvokeError()})");
    }

    public Task WaitForExitAsync(TimeSpan timeout) => _process.WaitForExitAsync().WaitAsync(timeout);

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                _process.WaitForExit(10_000);
            }
        }
        catch (InvalidOperationException)
        {
            // Never started or already reaped.
        }
        _process.Dispose();
    }

    private const int SigTerm = 15;

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);
}
