namespace Backup.Workers.Scheduling;

public sealed class SchedulerOptions
{
    public const string Section = "Backup:Scheduler";

    /// <summary>How often the scheduler looks for due work. A due instant is acted on at the first tick after it.</summary>
    public TimeSpan TickInterval { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>
    /// How far back the first tick of a worker looks (and the most any tick looks back): a worker that was down
    /// catches up on recently missed recovery points, not on years of them.
    /// </summary>
    public TimeSpan Lookback { get; set; } = TimeSpan.FromHours(1);
}
