using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using Marten;
using Npgsql;

namespace Backup.Projections.Auditing;

/// <summary>
/// One link of the hash chain over the event log, keyed by the event's global sequence. Hash = SHA-256(PreviousHash ||
/// canonical bytes of the event row); the first link's PreviousHash is 32 zero bytes. Stored links are checkpoints:
/// verification can start at any link and trust the chain before it.
/// </summary>
public sealed class AuditLink
{
    public long Id { get; set; }
    public Guid StreamId { get; set; }
    public string EventType { get; set; } = "";
    public DateTimeOffset Timestamp { get; set; }
    public string Hash { get; set; } = "";
    public string PreviousHash { get; set; } = "";
}

/// <summary>
/// An event row exactly as PostgreSQL holds it, with jsonb columns in their text form. Not is_archived: archiving a
/// stream is a legitimate operation and must not break the chain (verification checks the flag against the stream's
/// instead, see <see cref="EventRows.FirstArchivedApartFromItsStreamAsync"/>).
/// </summary>
public sealed record StoredEvent(
    long Sequence, Guid EventId, Guid StreamId, long Version, string EventType, DateTimeOffset Timestamp,
    string? CorrelationId, string? CausationId, string? Headers, string Data, string? DotNetType = null, string? TenantId = null,
    byte[]? BinaryData = null);

public static class AuditChain
{
    public static readonly string Genesis = Convert.ToHexStringLower(new byte[32]);

    /// <summary>
    /// The link hash. Fields are length-prefixed so no two different rows encode alike; the timestamp is whole
    /// microseconds since the Unix epoch because that is all PostgreSQL keeps; jsonb is hashed in PostgreSQL's own text
    /// form (jsonb normalises key order and whitespace, so the text is stable for as long as the value is).
    /// </summary>
    public static string Link(string previousHash, StoredEvent e)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        hash.AppendData(Convert.FromHexString(previousHash));
        hash.AppendData("backup-audit-v1"u8);
        AppendInt64(hash, e.Sequence);
        hash.AppendData(e.EventId.ToByteArray(bigEndian: true));
        hash.AppendData(e.StreamId.ToByteArray(bigEndian: true));
        AppendInt64(hash, e.Version);
        AppendString(hash, e.EventType);
        AppendInt64(hash, Microseconds(e.Timestamp));
        AppendString(hash, e.CorrelationId);
        AppendString(hash, e.CausationId);
        AppendString(hash, e.Headers);
        AppendString(hash, e.Data);
        // What the row deserialises as, and whose it is: editing either would change what readers see.
        AppendString(hash, e.DotNetType);
        AppendString(hash, e.TenantId);
        // Marten reads an event from bdata rather than data when it is set. Hashed only when present, so every link
        // computed before the column was covered still verifies; the other fields are length-prefixed, so a row with it
        // never encodes like one without.
        if (e.BinaryData is { } binary)
        {
            hash.AppendData("bdata"u8);
            AppendInt64(hash, binary.Length);
            hash.AppendData(binary);
        }
        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }

    public static long Microseconds(DateTimeOffset t) => (t.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks) / 10;

    private static void AppendInt64(IncrementalHash hash, long value)
    {
        Span<byte> buffer = stackalloc byte[8];
        BinaryPrimitives.WriteInt64BigEndian(buffer, value);
        hash.AppendData(buffer);
    }

    private static void AppendString(IncrementalHash hash, string? value)
    {
        if (value is null)
        {
            AppendInt64(hash, -1);
            return;
        }
        var bytes = Encoding.UTF8.GetBytes(value);
        AppendInt64(hash, bytes.Length);
        hash.AppendData(bytes);
    }
}

/// <summary>Reads event rows straight from mt_events, so the chain covers what is stored rather than what deserialises.</summary>
public static class EventRows
{
    public static string Schema(this IQuerySession session) => session.DocumentStore.Options.Events.DatabaseSchemaName;

    /// <summary>Rows with <paramref name="after"/> &lt; sequence ≤ <paramref name="through"/>, in sequence order.</summary>
    public static async Task<List<StoredEvent>> ReadAsync(IQuerySession session, long after, long through, CancellationToken ct)
    {
        await using var connection = session.Database.CreateConnection();
        await connection.OpenAsync(ct);
        await using var command = new NpgsqlCommand(
            $"""
            SELECT seq_id, id, stream_id, version, type, timestamp, correlation_id, causation_id, headers::text, data::text, mt_dotnet_type, tenant_id, bdata
            FROM "{session.Schema()}".mt_events
            WHERE seq_id > @after AND seq_id <= @through
            ORDER BY seq_id
            """, connection);
        command.Parameters.AddWithValue("after", after);
        command.Parameters.AddWithValue("through", through);
        var rows = new List<StoredEvent>();
        await using var reader = await command.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
            rows.Add(Read(reader));
        return rows;
    }

    public static StoredEvent Read(NpgsqlDataReader r) => new(
        r.GetInt64(0), r.GetGuid(1), r.GetGuid(2), r.GetInt64(3), r.GetString(4),
        new DateTimeOffset(r.GetFieldValue<DateTime>(5), TimeSpan.Zero),
        r.IsDBNull(6) ? null : r.GetString(6), r.IsDBNull(7) ? null : r.GetString(7),
        r.IsDBNull(8) ? null : r.GetString(8), r.GetString(9),
        r.IsDBNull(10) ? null : r.GetString(10), r.IsDBNull(11) ? null : r.GetString(11),
        r.IsDBNull(12) ? null : r.GetFieldValue<byte[]>(12));

    /// <summary>
    /// The lowest sequence of a row whose is_archived differs from its stream's, if any. Marten archives a whole stream at once
    /// (stream and events), and readers skip archived events: one event archived on its own is a step hidden from every view
    /// while its row, and so its link, stay as they were. No link covers the flag, so no checkpoint vouches for it either.
    /// </summary>
    public static async Task<long?> FirstArchivedApartFromItsStreamAsync(IQuerySession session, CancellationToken ct)
    {
        await using var connection = session.Database.CreateConnection();
        await connection.OpenAsync(ct);
        await using var command = new NpgsqlCommand(
            $"""
            SELECT min(e.seq_id)
            FROM "{session.Schema()}".mt_events e
            LEFT JOIN "{session.Schema()}".mt_streams s ON s.id = e.stream_id AND s.tenant_id = e.tenant_id
            WHERE e.is_archived IS DISTINCT FROM coalesce(s.is_archived, false)
            """, connection);
        return await command.ExecuteScalarAsync(ct) is long sequence ? sequence : null;
    }

    /// <summary>
    /// The lowest sequence below 1, if any row has one. PostgreSQL's sequence numbers events from 1 and the daemon reads
    /// only above 0, so such a row is under no link and behind every checkpoint.
    /// </summary>
    public static async Task<long?> FirstBelowOneAsync(IQuerySession session, CancellationToken ct)
    {
        await using var connection = session.Database.CreateConnection();
        await connection.OpenAsync(ct);
        await using var command = new NpgsqlCommand($"""SELECT min(seq_id) FROM "{session.Schema()}".mt_events WHERE seq_id < 1""", connection);
        return await command.ExecuteScalarAsync(ct) is long sequence ? sequence : null;
    }
}
