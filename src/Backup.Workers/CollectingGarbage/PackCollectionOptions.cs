namespace Backup.Workers.CollectingGarbage;

public sealed class PackCollectionOptions
{
    public const string Section = "Backup:PackCollection";

    /// <summary>How often the collector condemns unreferenced packs and deletes earlier condemned ones.</summary>
    public TimeSpan Interval { get; set; } = TimeSpan.FromHours(1);

    /// <summary>
    /// A pack file younger than this is never condemned: it may have just landed, with its record still on the way (the
    /// API renames a verified pack into place and records it a moment later).
    /// </summary>
    public TimeSpan MinPackAge { get; set; } = TimeSpan.FromHours(1);
}
