using System.Text.Json;
using Recsys.DenseCompute.Dlrm;
using Recsys.DenseCompute.Embeddings;
using Recsys.DenseCompute.Models;

namespace Recsys.DenseCompute.Tests;

/// <summary>One tests/fixtures/dlrm/&lt;config&gt;/ directory written by tools/make_dlrm_fixtures.py.</summary>
internal sealed class DlrmFixture
{
    public static readonly string[] Configs = ["dot", "dot-itself", "cat", "multi-event", "mean", "weighted", "no-bottom"];

    private DlrmFixture(string directory)
    {
        Directory = directory;
        Spec = ModelSpec.Load(Path.Combine(directory, "model.json")).RequireDlrm();
        Request = File.ReadAllBytes(Path.Combine(directory, "request.json"));
        using JsonDocument doc = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(directory, "expected.json")));
        foreach (JsonProperty p in doc.RootElement.EnumerateObject())
        {
            Expected[p.Name] = p.Value.EnumerateArray().SelectMany(row => row.EnumerateArray().Select(v => v.GetSingle())).ToArray();
        }
    }

    public string Directory { get; }
    public DlrmSpec Spec { get; }
    public byte[] Request { get; }

    /// <summary>PyTorch's scores per storage ("fp32", "fp16", "int8", "int4"), batch x events row-major.</summary>
    public Dictionary<string, float[]> Expected { get; } = [];

    public static string Root => Path.Combine(AppContext.BaseDirectory, "fixtures", "dlrm");

    public static DlrmFixture Open(string config) => new(Path.Combine(Root, config));

    /// <summary>The spec with every table stored as <paramref name="storage"/>, for the quantized variants.</summary>
    public DlrmSpec WithStorage(RowFormat storage) =>
        Spec with { Tables = [.. Spec.Tables.Select(t => t with { Storage = storage })] };

    public RankBatch Batch() => new RankRequestJson(Spec).Parse(Request);
}
