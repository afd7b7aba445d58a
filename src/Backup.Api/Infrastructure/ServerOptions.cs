namespace Backup.Api.Infrastructure;

public sealed class ServerOptions
{
    public const string Section = "Backup";

    /// <summary>PostgreSQL schema of the catalog (events and documents).</summary>
    public string Schema { get; set; } = "backup";

    /// <summary>The backup server's local disk store (short-term recovery points).</summary>
    public string DiskStore { get; set; } = "data/disk-store";

    /// <summary>Blob container that is the online vault.</summary>
    public string VaultContainer { get; set; } = "backup-vault";

    /// <summary>
    /// Run Marten's async daemon (projections) inside the API process too. Off in production, where
    /// Backup.Workers runs it; tests and single-process setups turn it on.
    /// </summary>
    public bool RunDaemon { get; set; }

    /// <summary>
    /// The first admin's API key ("Authorization: ApiKey &lt;key&gt;"), acting as "user:bootstrap-admin". Set it from a
    /// secret store or environment (Backup__BootstrapAdminKey), never in a committed file; it is never logged.
    /// </summary>
    public string? BootstrapAdminKey { get; set; }

    /// <summary>A guessable admin key would make every other protection moot.</summary>
    public const int MinBootstrapAdminKeyLength = 16;

    /// <summary>
    /// How long a read of the recovery points, restores or jobs waits for the projection daemon to pass what was committed when
    /// the read arrived (read-your-writes, see <see cref="ReadYourWrites"/>); past it the read answers from the view as it is.
    /// Zero turns the wait off.
    /// </summary>
    public TimeSpan ReadYourWritesWait { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Largest pack the server accepts from an agent.</summary>
    public long MaxPackBytes { get; set; } = 256L << 20;
}
