using Backup.Commands.Agents;
using Backup.Commands.Common;
using Backup.Commands.ProtectionGroups;
using Backup.Commands.Uniqueness;
using FluentValidation;
using Marten;
using Mediator;

namespace Backup.Commands.DataSources;

/// <summary>Protects a folder of an enrolled agent; <see cref="Include"/> and <see cref="Exclude"/> are optional patterns (see <c>PathFilter</c>).</summary>
public sealed record AddDataSource(
    Guid GroupId, Guid AgentId, DataSourceKind? Kind, string Path,
    IReadOnlyList<string>? Include = null, IReadOnlyList<string>? Exclude = null) : ICommand<Guid>;

public sealed class AddDataSourceValidator : AbstractValidator<AddDataSource>
{
    public AddDataSourceValidator()
    {
        RuleFor(x => x.AgentId).NotEmpty();
        RuleFor(x => x.Kind).NotNull().IsInEnum();
        RuleFor(x => x.Path).NotEmpty().MaximumLength(4096)
            .Must(IsAbsolute).WithMessage("'Path' must be an absolute path on the agent's machine (e.g. /srv/data or C:\\Data).")
            .Must(p => !AgentPath.HasParentSegment(p)).WithMessage(AgentPath.ParentSegmentMessage);
        this.ValidPatterns(x => x.Include);
        this.ValidPatterns(x => x.Exclude);
    }

    // The path is on the agent's machine, which may not share this server's OS.
    public static bool IsAbsolute(string? path) =>
        path is not null && (path.StartsWith('/') || (path.Length >= 3 && AgentPath.IsWindows(path) && path[2] is '\\' or '/'));
}

/// <summary>
/// A path on an agent's machine, judged as far as the server can without seeing that machine. Empty and "." segments and a
/// trailing separator are dropped, so <c>/srv/x</c>, <c>/srv/./x</c>, <c>/srv//x</c> and <c>/srv/x/</c> are one folder (they
/// were four data sources). A ".." segment is refused, not resolved: only the agent's file system knows where it leads (after
/// a symlink <c>/srv/y/../x</c> need not be <c>/srv/x</c>), and <c>/srv/../etc</c> reads as something it is not.
/// </summary>
public static class AgentPath
{
    public const string ParentSegmentMessage =
        "'Path' must name the folder directly, without '..' segments: only the agent's machine knows where they lead.";

    /// <summary>A drive-letter path (C:\Data): separators are \ or /, and names compare without case.</summary>
    public static bool IsWindows(string path) => path.Length >= 2 && char.IsAsciiLetter(path[0]) && path[1] == ':';

    public static bool HasParentSegment(string? path) => path is not null && Segments(path).Contains("..");

    public static string Normal(string path)
    {
        var segments = Segments(path).Where(s => s is not ("" or ".")).ToList();
        return IsWindows(path) ? $"{path[..2]}\\{string.Join('\\', segments)}" : $"/{string.Join('/', segments)}";
    }

    /// <summary>Whether one folder holds the other (or they are the same); both normal, of one machine.</summary>
    public static bool Overlap(string a, string b) => Holds(a, b) || Holds(b, a);

    /// <summary>Whether <paramref name="path"/> is <paramref name="folder"/> or inside it; both normal.</summary>
    public static bool Holds(string folder, string path)
    {
        var comparison = IsWindows(folder) ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal;
        return path.Equals(folder, comparison)
            || (path.StartsWith(folder, comparison) && (folder.EndsWith('/') || folder.EndsWith('\\') || path[folder.Length] is '/' or '\\'));
    }

    /// <summary>
    /// Whether a restore into <paramref name="path"/> (normal) would write over the operating system: the root of the file
    /// system or of a drive; the folders holding the system's programs, libraries, configuration and kernel interfaces, and
    /// everything in them (<c>/etc/nginx</c> too); and the folders holding every user's or service's data as a whole
    /// (<c>/home</c>, <c>/var</c>, but not a folder inside them).
    /// </summary>
    public static bool IsSystemFolder(string path)
    {
        if (IsWindows(path))
        {
            var drive = path[..2];
            return path.Length <= 3
                || WindowsSystem.Any(f => Holds($"{drive}\\{f}", path))
                || WindowsDataRoots.Any(f => path.Equals($"{drive}\\{f}", StringComparison.OrdinalIgnoreCase));
        }
        return path == "/" || PosixSystem.Any(f => Holds(f, path)) || PosixDataRoots.Contains(path);
    }

    private static readonly string[] PosixSystem =
        ["/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/proc", "/root", "/run", "/sbin", "/sys", "/usr"];

    private static readonly HashSet<string> PosixDataRoots = ["/home", "/var", "/srv", "/opt", "/mnt", "/media"];

    private static readonly string[] WindowsSystem = ["Windows", "Program Files", "Program Files (x86)"];

    private static readonly string[] WindowsDataRoots = ["Users", "ProgramData"];

    // On Linux a backslash is an ordinary character of a name, not a separator.
    private static string[] Segments(string path) => IsWindows(path) ? path[2..].Split('\\', '/') : path.Split('/');
}

public sealed class AddDataSourceHandler(IDocumentSession session, TimeProvider clock) : ICommandHandler<AddDataSource, Guid>
{
    public async ValueTask<Guid> Handle(AddDataSource command, CancellationToken ct)
    {
        var (group, groupVersion) = await session.LoadAsync<ProtectionGroup>(command.GroupId, ProtectionGroup.Next, ct);
        if (group is null) throw new NotFoundException("Protection group", command.GroupId);
        var (agent, _) = await session.LoadAsync<Agent>(command.AgentId, Agent.Next, ct);
        if (agent is null) throw new UnprocessableException($"Agent '{command.AgentId}' is not enrolled.");

        var dataSourceId = Guid.CreateVersion7();
        var path = AgentPath.Normal(command.Path);
        var key = ProtectedFolder.KeyOf(agent.Id, path);
        if (await session.Query<ProtectedFolder>().AnyAsync(f => f.Key == key, ct))
            throw new ConflictException($"'{path}' on agent {agent.Id} is already protected.");
        // A folder inside a protected one (or around it) is refused: its files would be read, stored and restored twice under
        // two policies, and "which recovery point holds this file" would have two answers. Protect the outer folder with an
        // exclude pattern for the inner one, and the inner one as a data source of its own. Two overlapping adds at the same
        // instant can both pass (the unique index holds the exact folder only); adding data sources is rare enough for that.
        var prefix = ProtectedFolder.KeyOf(agent.Id, "");
        var protectedFolders = await session.Query<ProtectedFolder>().Where(f => f.Key.StartsWith(prefix)).Select(f => f.Key).ToListAsync(ct);
        if (protectedFolders.Select(k => k[prefix.Length..]).FirstOrDefault(other => AgentPath.Overlap(AgentPath.Normal(other), path)) is { } overlapping)
            throw new ConflictException(
                $"'{path}' overlaps '{overlapping}', already protected on agent {agent.Id}: protect one of them, and leave the inner folder out of the outer one with an exclude pattern to give it a data source of its own.");
        var (toGroup, toDataSource) = ProtectionGroup.AddDataSource(group, command.GroupId, dataSourceId, agent.Id, command.Kind!.Value, path, clock.GetUtcNow());
        session.AppendExpected(group.Id, groupVersion, toGroup);
        var source = DataSource.Next(null, toDataSource);
        if (command.Include is { Count: > 0 } || command.Exclude is { Count: > 0 })
            session.Events.StartStream<DataSource>(dataSourceId, toDataSource,
                DataSource.SetFilters(source, dataSourceId, command.Include, command.Exclude, clock.GetUtcNow()));
        else
            session.Events.StartStream<DataSource>(dataSourceId, toDataSource);
        try
        {
            await session.SaveChangesAsync(ct);
        }
        catch (Exception e) when (e.IsUniqueViolation())
        {
            // Lost a race for the same folder (unique index on ProtectedFolder.Key).
            throw new ConflictException($"'{path}' on agent {agent.Id} is already protected.");
        }
        catch (JasperFx.Events.EventStreamUnexpectedMaxEventIdException)
        {
            throw new ConflictException($"Protection group {group.Id} changed meanwhile; try again.");
        }
        return dataSourceId;
    }
}
