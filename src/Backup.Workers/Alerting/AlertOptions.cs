namespace Backup.Workers.Alerting;

public sealed class AlertOptions
{
    public const string Section = "Backup:Alerts";

    /// <summary>How often the monitor checks the alert conditions. An alert is raised or resolved at the first check after its condition changes.</summary>
    public TimeSpan CheckInterval { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>An agent that has not polled for jobs for longer than this is reported lost.</summary>
    public TimeSpan AgentLostAfter { get; set; } = TimeSpan.FromMinutes(15);
}
