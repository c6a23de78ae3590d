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
    private readonly StreamWriter? _file;

    private SiloProcess(string name, Process process, int httpPort, int siloPort, string? logDirectory)
    {
        Name = name;
        _process = process;
        HttpPort = httpPort;
        SiloPort = siloPort;
        if (logDirectory is not null)
        {
            Directory.CreateDirectory(logDirectory);
            LogPath = Path.Combine(logDirectory, name + ".log");
            _file = new StreamWriter(LogPath, append: true) { AutoFlush = true };
        }
    }

    /// <summary>Every line the process wrote, each prefixed with the UTC time it arrived here; null when not kept.</summary>
    public string? LogPath { get; }

    public string Name { get; }
    public int Pid => _process.Id;
    public int HttpPort { get; }
    public int SiloPort { get; }
    public bool HasExited => _process.HasExited;
    public int ExitCode => _process.ExitCode;

    /// <summary>
    /// Starts the process; its output is kept for the test log and, with logDirectory, written to
    /// NAME.log there with arrival timestamps (the timeline of a failure test is read from them).
    /// environment adds variables (e.g. log levels) on top of the test's own, minus any RECSYS_*.
    /// </summary>
    public static SiloProcess Start(string name, string fileName, IEnumerable<string> arguments, int httpPort = 0, int siloPort = 0,
        string? logDirectory = null, IReadOnlyDictionary<string, string>? environment = null)
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
        foreach ((string key, string value) in environment ?? new Dictionary<string, string>()) info.Environment[key] = value;
        var process = new Process { StartInfo = info };
        var silo = new SiloProcess(name, process, httpPort, siloPort, logDirectory);
        process.OutputDataReceived += (_, e) => silo.Keep(e.Data);
        process.ErrorDataReceived += (_, e) => silo.Keep(e.Data);
        process.Start();
        silo.Note($"started pid {process.Id}: {fileName} {string.Join(' ', arguments)}");
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return silo;
    }

    private void Keep(string? line)
    {
        if (line is null) return;
        _output.Enqueue(line);
        while (_output.Count > 400) _output.TryDequeue(out _);
        WriteFile(line);
    }

    /// <summary>A line of the test's own (kill, signal) in this process's log file, marked as such.</summary>
    public void Note(string line) => WriteFile("### test: " + line);

    private void WriteFile(string line)
    {
        if (_file is null) return;
        string stamped = DateTime.UtcNow.ToString("HH:mm:ss.fff", System.Globalization.CultureInfo.InvariantCulture) + " " + line;
        lock (_file)
        {
            try
            {
                _file.WriteLine(stamped);
            }
            catch (ObjectDisposedException)
            {
                // A last line racing Dispose.
            }
        }
    }

    public string OutputTail(int lines = 40) => string.Join(Environment.NewLine, _output.Where(l => !l.StartsWith("   at ", StringComparison.Ordinal)).TakeLast(lines).Select(l => $"  [{Name}] {(l.Length > 300 ? l[..300] + " ..." : l)}"));

    /// <summary>SIGKILL: the process gets no chance to checkpoint or say goodbye.</summary>
    public void Kill()
    {
        Note("SIGKILL");
        _process.Kill(entireProcessTree: true);
    }

    /// <summary>SIGTERM: the host's graceful shutdown (Kestrel drains, the silo deactivates its grains and leaves).</summary>
    public void Terminate()
    {
        Note("SIGTERM");
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
        if (_file is not null)
        {
            lock (_file) _file.Dispose();
        }
    }

    private const int SigTerm = 15;

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);
}
