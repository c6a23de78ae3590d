using BenchmarkDotNet.Running;
using Recsys.Benchmarks;

if (args.Length > 0 && args[0] == "gemm-compare")
{
    GemmCompare.Run(args);
    return;
}

BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
