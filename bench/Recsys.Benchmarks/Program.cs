using BenchmarkDotNet.Running;

if (args is ["embag", ..]) { Recsys.Benchmarks.EmbeddingBagConsole.Run(args[1..]); return; }
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
