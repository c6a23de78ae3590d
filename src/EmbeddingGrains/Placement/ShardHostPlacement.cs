using Orleans.Placement;

namespace Recsys.EmbeddingGrains.Placement;

/// <summary>Activate on the silo whose address is the grain key, and nowhere else.</summary>
[GenerateSerializer, Immutable, SuppressReferenceTracking, Alias("recsys.shard-host-placement")]
public sealed class ShardHostPlacement : PlacementStrategy
{
    public static readonly ShardHostPlacement Instance = new();
}

[AttributeUsage(AttributeTargets.Class, AllowMultiple = false)]
public sealed class ShardHostPlacementAttribute() : PlacementAttribute(ShardHostPlacement.Instance);
