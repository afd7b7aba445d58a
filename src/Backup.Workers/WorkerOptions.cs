namespace Backup.Workers;

public sealed class WorkerOptions
{
    public const string Section = "Backup";

    public string Schema { get; set; } = "backup";
    public string DiskStore { get; set; } = "data/disk-store";
    public string VaultContainer { get; set; } = "backup-vault";
}
