using Backup.Commands.Access;
using Marten;
using Marten.Events.Aggregation;
using Mediator;

namespace Backup.Projections.Access;

/// <summary>Who has a key and with which role; never the key or its hash.</summary>
public sealed class ApiKeyView
{
    public Guid Id { get; set; }
    public string Name { get; set; } = "";
    public string Role { get; set; } = "";
    public DateTimeOffset IssuedAt { get; set; }
    public DateTimeOffset? RevokedAt { get; set; }
}

public sealed partial class ApiKeyViewProjection : SingleStreamProjection<ApiKeyView, Guid>
{
    public static ApiKeyView Create(ApiKeyIssued e) => new() { Id = e.KeyId, Name = e.Name, Role = e.Role, IssuedAt = e.IssuedAt };

    public static void Apply(ApiKeyRevoked e, ApiKeyView view) => view.RevokedAt = e.RevokedAt;
}

public sealed record ListApiKeys : IQuery<IReadOnlyList<ApiKeyView>>;

public sealed class ListApiKeysHandler(IQuerySession session) : IQueryHandler<ListApiKeys, IReadOnlyList<ApiKeyView>>
{
    public async ValueTask<IReadOnlyList<ApiKeyView>> Handle(ListApiKeys query, CancellationToken ct) =>
        await session.Query<ApiKeyView>().OrderBy(k => k.IssuedAt).ToListAsync(ct);
}
