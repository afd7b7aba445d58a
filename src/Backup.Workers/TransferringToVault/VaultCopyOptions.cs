namespace Backup.Workers.TransferringToVault;

public sealed class VaultCopyOptions
{
    public const string Section = "Backup:VaultCopy";

    /// <summary>Retries of one pack upload before the copy is recorded as failed (and retried later by the daemon).</summary>
    public int RetryAttempts { get; set; } = 6;

    /// <summary>First retry delay; doubles each attempt (with jitter) up to <see cref="MaxRetryDelay"/>.</summary>
    public TimeSpan RetryDelay { get; set; } = TimeSpan.FromSeconds(1);

    public TimeSpan MaxRetryDelay { get; set; } = TimeSpan.FromSeconds(30);
}
