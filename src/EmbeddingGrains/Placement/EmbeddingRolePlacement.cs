using Orleans.Placement;

namespace Recsys.EmbeddingGrains.Placement;

/// <summary>Activate only on silos whose roles include "embedding", spread over them by grain key.</summary>
[GenerateSerializer, Immutable, SuppressReferenceTracking, Alias("recsys.embedding-role-placement")]
public sealed class EmbeddingRolePlacement : PlacementStrategy
{
    public static readonly EmbeddingRolePlacement Instance = new();
}

[AttributeUsage(AttributeTargets.Class, AllowMultiple = false)]
public sealed class EmbeddingRolePlacementAttribute() : PlacementAttribute(EmbeddingRolePlacement.Instance);
