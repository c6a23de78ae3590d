using Orleans.Runtime.MembershipService.SiloMetadata;

namespace Recsys.EmbeddingGrains.Placement;

/// <summary>
/// Silo roles travel in Orleans' silo metadata (UseSiloMetadata), which every silo fetches from
/// every other as membership changes; the key holds a comma-separated role list.
/// </summary>
public static class SiloRoles
{
    public const string MetadataKey = "recsys.roles";

    public static string Format(IEnumerable<string> roles) => string.Join(",", roles.Select(r => r.Trim().ToLowerInvariant()));

    public static bool Has(SiloMetadata metadata, string role) =>
        metadata.Metadata.TryGetValue(MetadataKey, out string? roles) &&
        roles.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Contains(role, StringComparer.OrdinalIgnoreCase);
}
