namespace Backup.Agent;

public sealed class AgentOptions
{
    public const string Section = "Agent";

    /// <summary>Base address of the backup server's API, e.g. http://127.0.0.1:5080/.</summary>
    public Uri Server { get; set; } = new("http://127.0.0.1:5080/");

    /// <summary>One-time enrolment token from the server; needed only until the agent holds a credential.</summary>
    public string? EnrolmentToken { get; set; }

    /// <summary>Where the agent keeps its credential and scratch files (packs being built, packs being restored).</summary>
    public string StateDirectory { get; set; } = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData), "backup-agent");

    public string MachineName { get; set; } = Environment.MachineName;

    public TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(2);

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

    /// <summary>A pack is sealed and uploaded once it holds at least this many bytes.</summary>
    public long PackTargetBytes { get; set; } = 16L << 20;
}
