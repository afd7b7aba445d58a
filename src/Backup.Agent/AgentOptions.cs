namespace Backup.Agent;

public sealed class AgentOptions
{
    public const string Section = "Agent";

    /// <summary>Base address of the backup server's API, e.g. http://127.0.0.1:5080/.</summary>
    public Uri Server { get; set; } = new("http://127.0.0.1:5080/");

    /// <summary>
    /// One-time enrolment token from the server; needed only until the agent holds a credential. On the command line it can be
    /// read in <c>ps</c> by every local user until it is redeemed: prefer <see cref="EnrolmentTokenFile"/> or the environment
    /// (<c>Agent__EnrolmentToken</c>).
    /// </summary>
    public string? EnrolmentToken { get; set; }

    /// <summary>A file whose content (surrounding whitespace removed) is the one-time enrolment token; it wins over <see cref="EnrolmentToken"/>.</summary>
    public string? EnrolmentTokenFile { get; set; }

    /// <summary>Where the agent keeps its credential and scratch files (packs being built, packs being restored).</summary>
    public string StateDirectory { get; set; } = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData), "backup-agent");

    public string MachineName { get; set; } = Environment.MachineName;

    /// <summary>Between polls of a server that answers them at once (one that does not hold them, see <see cref="PollWait"/>).</summary>
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>
    /// How long the server may hold an idle agent's poll open until a job is queued for it (long polling; whole seconds, at
    /// most 60, 0 for plain polling): a job starts as soon as it is requested, and an idle agent sends one request per wait
    /// instead of one per <see cref="PollInterval"/>. Well below the HTTP client's timeout (30 min) and proxies' usual 60-100 s.
    /// </summary>
    public TimeSpan PollWait { get; set; } = TimeSpan.FromSeconds(25);

    /// <summary>
    /// How long a job's request is tried again while the server cannot be reached or fails (5xx, timeout): a restart of the
    /// API or of its database is ridden out rather than failing the job. Half the server's default lease (2 min), so a job
    /// that waited this long still holds its lease when the server comes back.
    /// </summary>
    public TimeSpan RetryFor { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>The longest wait between polls while the server cannot be reached or fails (the wait doubles from <see cref="PollInterval"/>).</summary>
    public TimeSpan MaxPollBackoff { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// How long a stopping agent waits for the server to take its running job back; keep it well inside the host's
    /// shutdown timeout (<c>shutdownTimeoutSeconds</c>, 30 s by default).
    /// </summary>
    public TimeSpan ReleaseTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// The repository passphrase, which unwraps the key file the server hands out; data is encrypted here, before it
    /// leaves the machine. Prefer <see cref="PassphraseFile"/> (a file readable only by the agent) to this setting.
    /// </summary>
    public string? Passphrase { get; set; }

    /// <summary>A file whose content (trailing newline removed) is the repository passphrase.</summary>
    public string? PassphraseFile { get; set; }

    /// <summary>Threads that compress and encrypt chunks (default: one per core).</summary>
    public int? SealingThreads { get; set; }

    /// <summary>
    /// The zstd level chunks are compressed at, 1 (fastest) to 19 (smallest). Default 2: with small files compressed in
    /// groups it stores the benchmark's dataset 1.7 % larger than level 3 for ~25 % less compression time (measured: agent
    /// CPU 10.0–10.5 instead of 13.0–14.2 core-s for its initial backup, repository 807.5 instead of 794.4 MB, restic's
    /// 824.5 MB). Changing it never changes chunk ids: it only decides how new chunks are stored.
    /// </summary>
    public int CompressionLevel { get; set; } = DefaultCompressionLevel;

    public const int DefaultCompressionLevel = 2;

    /// <summary>A pack is sealed and uploaded once it holds at least this many bytes.</summary>
    public long PackTargetBytes { get; set; } = 16L << 20;
}
