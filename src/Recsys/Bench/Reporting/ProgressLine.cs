namespace Recsys.Cli.Bench.Reporting;

/// <summary>A status line on stderr rewritten in place with \r, so stdout stays clean for the table or the JSON document.</summary>
public sealed class ProgressLine(TextWriter writer)
{
    private readonly Lock _lock = new();
    private int _lastLength;

    public void Update(string text)
    {
        lock (_lock)
        {
            writer.Write('\r');
            writer.Write(text.PadRight(_lastLength));
            _lastLength = text.Length;
            writer.Flush();
        }
    }

    /// <summary>Ends the line so later output starts on a fresh one.</summary>
    public void Finish()
    {
        lock (_lock)
        {
            if (_lastLength > 0) writer.WriteLine();
            _lastLength = 0;
            writer.Flush();
        }
    }
}
