using Recsys.DenseCompute.Models;
using Recsys.OnnxModels.Runtime;
using Recsys.OnnxModels.Vision;

namespace Recsys.OnnxModels.Tests;

/// <summary>
/// The served best-effort path stacks a batch into rented arrays and reads each request's rows
/// straight out of ONNX Runtime's output: results still equal PyTorch's, a rented array's earlier
/// contents never reach a later batch, and a batch no longer allocates a batch-sized array.
/// </summary>
public sealed class PooledBatchTests
{
    private static VisionModel Load(string name) => VisionModel.Load(ModelSpec.Load(VisionFixtures.ModelJson(name)));

    [Theory]
    [InlineData("resnext")]
    [InlineData("video3d")]
    [InlineData("video-frames")]
    public void Later_batches_reusing_rented_arrays_leave_earlier_results_alone_and_read_none_of_their_data(string name)
    {
        using VisionModel model = Load(name);
        IReadOnlyList<VisionFixtures.Case> cases = VisionFixtures.Cases(name);
        VisionFixtures.Case big = cases.MaxBy(c => c.Inputs.Values.First().Length)!, small = cases.MinBy(c => c.Inputs.Values.First().Length)!;
        // Big first, so the smaller batches after it rent arrays whose tails still hold its data.
        VisionFixtures.Case[][] batches = [[big, small, big], [small], [small, big], [small]];
        var kept = new List<(VisionFixtures.Case Case, GraphOutcome Outcome, string Where)>();
        for (int b = 0; b < batches.Length; b++)
        {
            GraphOutcome[] outcomes = model.RunBatch([.. batches[b].Select(c => new GraphRequest(c.Inputs))]);
            for (int i = 0; i < outcomes.Length; i++) kept.Add((batches[b][i], outcomes[i], $"batch {b} item {i}"));
        }
        // Checked only after every batch ran: an output sharing a rented or native buffer would have been overwritten.
        foreach ((VisionFixtures.Case c, GraphOutcome outcome, string where) in kept)
        {
            foreach ((string output, HostTensor expected) in c.Outputs) VisionFixtures.AssertClose(expected, outcome.Get()[output], 1e-5, $"{name}/{c.Name} ({where})/{output}");
        }
    }

    [Theory]
    [InlineData("resnext")]
    [InlineData("video-frames")]
    public void A_batch_allocates_less_than_a_tenth_of_its_stacked_input(string name)
    {
        using VisionModel model = Load(name);
        IReadOnlyList<VisionFixtures.Case> cases = VisionFixtures.Cases(name);
        GraphRequest[] batch = [.. cases.Concat(cases).Select(c => new GraphRequest(c.Inputs))];
        long inputBytes = batch.Sum(r => r.Inputs.Values.First().Length) * sizeof(float);
        // video-frames stacks the sampled frames of each clip: 4 of its T frames.
        if (name == "video-frames") inputBytes = cases.Max(c => c.Inputs["clip"].Shape[0] * 4 * 3 * 64 * 64) * sizeof(float);
        Assert.True(inputBytes > 85_000, $"the fixture batch ({inputBytes} bytes) is large-object-heap sized, as served batches are");
        for (int i = 0; i < 3; i++) model.RunBatch(batch);
        long least = long.MaxValue;
        for (int i = 0; i < 5; i++)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            model.RunBatch(batch);
            least = Math.Min(least, GC.GetAllocatedBytesForCurrentThread() - before);
        }
        Assert.True(least < inputBytes / 10, $"{name}: a batch allocated {least} bytes; its stacked input is {inputBytes} bytes");
    }

    [Fact]
    public void Rented_tensor_is_exactly_its_shape_and_onnx_runtime_sees_what_was_written()
    {
        using var rented = new RentedTensors();
        Span<float> a = rented.Add<float>([2, 3]);
        Span<long> b = rented.Add<long>([5]);
        Assert.Equal(6, a.Length);
        Assert.Equal(5, b.Length);
        for (int i = 0; i < a.Length; i++) a[i] = i * 0.5f;
        for (int i = 0; i < b.Length; i++) b[i] = 100 - i;
        Assert.Equal([2L, 3], rented.Values[0].GetTensorTypeAndShape().Shape);
        Assert.Equal([0f, 0.5f, 1f, 1.5f, 2f, 2.5f], rented.Values[0].GetTensorDataAsSpan<float>().ToArray());
        Assert.Equal([100L, 99, 98, 97, 96], rented.Values[1].GetTensorDataAsSpan<long>().ToArray());
    }

    [Fact]
    public void Rented_tensor_refuses_unserved_types_and_negative_dimensions()
    {
        using var rented = new RentedTensors();
        Assert.Contains("Double", Assert.Throws<NotSupportedException>(() => rented.Add<double>([1])).Message, StringComparison.Ordinal);
        Assert.Contains("[2, -1]", Assert.Throws<ArgumentException>(() => rented.Add<float>([2, -1])).Message, StringComparison.Ordinal);
        Assert.Empty(rented.Values);
    }
}
