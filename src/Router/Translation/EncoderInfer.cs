using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Recsys.DenseCompute.Dlrm;
using Recsys.OnnxModels.Seq2Seq;
using Recsys.OnnxModels.Vision;
using Recsys.Router.Hosting;
using Recsys.Router.Http;
using Recsys.Router.Scheduling;

namespace Recsys.Router.Translation;

/// <summary>
/// KServe v2 /infer on a seq2seq model's encoder, for raw use: INT64 src_ids [B, S] and
/// src_lengths [B] in, FP32 enc_out [B, S, H] and state [B, D] out. Tensors are read and written
/// by the shared <see cref="KServeTensors"/> codec against the encoder's declared signatures; what
/// the declarations cannot say (batch limit, max_source_length, ids in the vocabulary, lengths
/// within the row) is checked here.
/// </summary>
internal static class EncoderInfer
{
    /// <summary>Rows one raw encoder call may carry.</summary>
    public const int MaxBatch = 256;

    public static Task ServeAsync(HttpContext context, TranslationWorkload model, ComputeScheduler scheduler, ServeOptions options) =>
        TranslationEndpoints.ServeAsync(context, model, (ctx, m, body, deadline, cancel) => InferAsync(ctx, m, scheduler, body, deadline, cancel));

    private static async Task InferAsync(HttpContext context, TranslationWorkload model, ComputeScheduler scheduler, ReadOnlyMemory<byte> body, long deadline, CancellationToken cancel)
    {
        Seq2SeqGraphs graphs = model.Model.Graphs;
        KServeRequest request = KServeTensors.ReadRequest(body, graphs.EncoderInputSignatures, graphs.EncoderOutputSignatures);
        (long[] ids, long[] lengths, int batch, int width) = Check(request, model.Model);
        (float[] encOut, float[] state) = await scheduler.RunAsync(model.Name, WorkClass.Interactive, deadline, () => graphs.Encode(ids, lengths, batch, width), cancel).WaitAsync(cancel).ConfigureAwait(false);
        var outputs = new List<(string Name, HostTensor Tensor)>(2);
        if (Wanted(request, Seq2SeqGraphs.EncOut)) outputs.Add((Seq2SeqGraphs.EncOut, HostTensor.Of(encOut, batch, width, graphs.Hidden)));
        if (Wanted(request, Seq2SeqGraphs.State)) outputs.Add((Seq2SeqGraphs.State, HostTensor.Of(state, batch, graphs.StateWidth)));
        HttpResponse response = context.Response;
        response.StatusCode = 200;
        response.ContentType = "application/json";
        using (var writer = new Utf8JsonWriter(response.BodyWriter))
        {
            writer.WriteStartObject();
            writer.WriteString("model_name", model.Name);
            writer.WriteString("model_version", model.Version);
            if (request.Id is not null) writer.WriteString("id", request.Id);
            KServeTensors.WriteOutputs(writer, outputs);
            writer.WriteEndObject();
        }
        await response.BodyWriter.FlushAsync(cancel).ConfigureAwait(false);
    }

    private static bool Wanted(KServeRequest request, string output) => request.Outputs is null || request.Outputs.Contains(output);

    /// <summary>The limits the graph's declarations leave open; the shared reader has already checked names, types and ranks.</summary>
    private static (long[] Ids, long[] Lengths, int Batch, int Width) Check(KServeRequest request, Seq2SeqModel model)
    {
        HostTensor ids = request.Inputs[Seq2SeqGraphs.SrcIds], lengths = request.Inputs[Seq2SeqGraphs.SrcLengths];
        long batch = ids.Shape[0], width = ids.Shape[1];
        if (batch > MaxBatch) throw new InvalidRequestException("inputs[src_ids].shape", $"batch {batch} must be in [1, {MaxBatch}]");
        if (width > model.Spec.MaxSourceLength) throw new InvalidRequestException("inputs[src_ids].shape", $"length {width} must be in [1, {model.Spec.MaxSourceLength}] (max_source_length)", 422);
        if (lengths.Shape[0] != batch) throw new InvalidRequestException("inputs[src_lengths].shape", $"is [{lengths.Shape[0]}], src_ids has batch {batch}");
        long[] idData = ids.Longs, lengthData = lengths.Longs;
        int v = model.Graphs.Vocabulary;
        for (int i = 0; i < idData.Length; i++)
        {
            if ((ulong)idData[i] >= (ulong)v) throw new InvalidRequestException($"inputs[src_ids].data[{i}]", $"token id {idData[i]} is outside the vocabulary [0, {v})", 422);
        }
        for (int i = 0; i < lengthData.Length; i++)
        {
            if (lengthData[i] < 1 || lengthData[i] > width) throw new InvalidRequestException($"inputs[src_lengths].data[{i}]", $"is {lengthData[i]}, must be in [1, {width}]");
        }
        return (idData, lengthData, (int)batch, (int)width);
    }
}
