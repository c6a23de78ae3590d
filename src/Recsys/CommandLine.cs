namespace Recsys.Cli;

/// <summary>Dispatches `recsys VERB ...` to the verb's command; every command lives in its own file.</summary>
public static class CommandLine
{
    public static Task<int> RunAsync(string[] args)
    {
        if (args.Length == 0 || args[0] is "-h" or "--help" or "help")
        {
            Console.WriteLine(Usage);
            return Task.FromResult(args.Length == 0 ? 2 : 0);
        }
        try
        {
            switch (args[0])
            {
                // VERBS (keep one line per verb; each command parses its own options)
                case "demo-model": return Commands.DemoModelCommand.RunAsync(args[1..]);
                case "rank": return Commands.RankCommand.RunAsync(args[1..]);
                case "serve": return Commands.ServeCommand.RunAsync(args[1..]);
                case "bench": return Commands.BenchCommand.RunAsync(args[1..]);
                case "accuracy": return Commands.AccuracyCommand.RunAsync(args[1..]);
                case "characterize": return Commands.CharacterizeCommand.RunAsync(args[1..]);
                case "quantize": return Commands.QuantizeCommand.RunAsync(args[1..]);
                default:
                    Console.Error.WriteLine($"recsys: unknown command '{args[0]}'\n\n{Usage}");
                    return Task.FromResult(2);
            }
        }
        catch (CliException e)
        {
            Console.Error.WriteLine($"recsys {args[0]}: {e.Message}");
            return Task.FromResult(2);
        }
    }

    public const string Usage = """
        usage: recsys <command> [options]

        commands:
          serve         start a silo and the HTTP API (single node by default)
          demo-model    write a deterministic synthetic DLRM into a model repository
          rank          score a ranking request body offline
          bench         drive a running cluster (load, capacity, bandwidth)
          accuracy      AUC and normalized entropy of a model at several precisions
          characterize  parameters, intensity, per-operator time and roofline of a model on this machine
          quantize      choose per-layer precision and row formats on calibration data, write the model copy
        """;
}

/// <summary>A user error on the command line: printed without a stack trace, exit code 2.</summary>
public sealed class CliException(string message) : Exception(message);
