using Recsys.Cli;

return await CommandLine.RunAsync(args);
