using BenchmarkDotNet.Running;
using Recsys.Benchmarks;

if (args.Length > 0 && args[0] == "gemm-compare")
{
    GemmCompare.Run(args);
    return;
}

if (args is ["qgemm-compare", ..]) { QuantizedGemmCompare.Run(args); return; }
if (args is ["gemm-trace", ..]) { GemmTrace.Run(args[1..]); return; }
if (args is ["seq2seq", ..]) { Seq2SeqBench.Run(args[1..]); return; }
if (args is ["translation-isolation", ..]) { TranslationIsolation.Run(args[1..]); return; }
if (args is ["isolation", ..]) { Recsys.Benchmarks.IsolationBench.Run(args[1..]); return; }
if (args is ["embag", ..]) { Recsys.Benchmarks.EmbeddingBagConsole.Run(args[1..]); return; }
if (args is ["serving-profile", ..]) { ServingProfile.Run(args[1..]); return; }
if (args is ["vision-overhead", ..]) { VisionOverhead.Run(args[1..]); return; }
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
