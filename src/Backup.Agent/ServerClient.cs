using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using Backup.Storage.Contracts;
using Backup.Storage.Crypto;
using Backup.Storage.Format;
using Microsoft.Extensions.Logging;

namespace Backup.Agent;

/// <summary>
/// Everything the agent says to the backup server, over HTTP only. A job's requests are tried again while the server cannot
/// be reached or fails (a refused connection, a 5xx, a timeout: a restart of the API or of its PostgreSQL), with backoff, for
/// up to <paramref name="retryFor"/>; a refusal (4xx) is final at once. Not retried: the poll and the heartbeat (each has its
/// own loop), the release (bounded by its own timeout) and a pack download (written into the restore as it arrives).
/// </summary>
public sealed class ServerClient(HttpClient http, TimeSpan retryFor = default, ILogger<ServerClient>? log = null)
{
    /// <summary>
    /// A failure that says nothing about the request itself: the server was unreachable, overloaded or failing for a while.
    /// A cancellation by <paramref name="ct"/> is not one (the job or the agent is stopping); HttpClient's own timeout is.
    /// </summary>
    public static bool IsTransient(Exception e, CancellationToken ct) => e switch
    {
        HttpRequestException => true,
        ServerRejectedException r => (int)r.Status >= 500 || r.Status is HttpStatusCode.RequestTimeout or HttpStatusCode.TooManyRequests,
        OperationCanceledException => !ct.IsCancellationRequested,
        _ => false,
    };

    private Task RetryingAsync(string what, Func<CancellationToken, Task> call, CancellationToken ct) =>
        RetryingAsync(what, async token =>
        {
            await call(token);
            return true;
        }, ct);

    private async Task<T> RetryingAsync<T>(string what, Func<CancellationToken, Task<T>> call, CancellationToken ct)
    {
        var giveUpAt = DateTime.UtcNow + retryFor;
        var delay = TimeSpan.FromMilliseconds(500);
        while (true)
        {
            try
            {
                return await call(ct);
            }
            catch (Exception e) when (IsTransient(e, ct) && DateTime.UtcNow + delay < giveUpAt)
            {
                log?.LogWarning("Could not {What} ({Reason}); trying again in {Delay:F1} s", what, e.Message, delay.TotalSeconds);
                await Task.Delay(delay, ct);
                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, MaxRetryDelay.Ticks));
            }
        }
    }

    private static readonly TimeSpan MaxRetryDelay = TimeSpan.FromSeconds(10);

    public void UseCredential(string credential) =>
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue(AgentHeaders.Scheme, credential);

    public async Task<EnrolAgentResponse> EnrolAsync(string token, string machineName, CancellationToken ct)
    {
        using var response = await http.PostAsJsonAsync("api/agents/enrol", new EnrolAgentRequest(token, machineName), WireJson.Default.EnrolAgentRequest, ct);
        await EnsureSuccessAsync(response, "enrol", ct);
        return (await response.Content.ReadFromJsonAsync(WireJson.Default.EnrolAgentResponse, ct))!;
    }

    /// <summary>
    /// The agent's next job, or null. With <paramref name="wait"/> the server holds the poll until a job is queued or the wait
    /// ends; <c>Held</c> says the server did (a server that does not know long polling answers at once, without the header).
    /// </summary>
    public async Task<(AgentJob? Job, bool Held)> NextJobAsync(Guid agentId, TimeSpan wait, CancellationToken ct)
    {
        var query = wait > TimeSpan.Zero ? $"?wait={(int)wait.TotalSeconds}" : "";
        using var response = await http.PostAsync($"api/agents/{agentId}/jobs/next{query}", null, ct);
        if (response.StatusCode == HttpStatusCode.NoContent) return (null, response.Headers.Contains(AgentHeaders.PollHeld));
        await EnsureSuccessAsync(response, "poll for jobs", ct);
        return (await response.Content.ReadFromJsonAsync(WireJson.Default.AgentJob, ct), false);
    }

    public Task<PackStored> UploadPackAsync(Guid agentId, string jobPath, string packId, string file, CancellationToken ct) =>
        RetryingAsync($"upload pack {packId}", token => UploadPackOnceAsync(agentId, jobPath, packId, file, token), ct);

    private async Task<PackStored> UploadPackOnceAsync(Guid agentId, string jobPath, string packId, string file, CancellationToken ct)
    {
        await using var stream = File.OpenRead(file);
        using var content = new StreamContent(stream, 1 << 18);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        content.Headers.ContentLength = stream.Length;
        using var response = await http.PutAsync($"api/agents/{agentId}/{jobPath}/packs/{packId}", content, ct);
        await EnsureSuccessAsync(response, $"upload pack {packId}", ct);
        return (await response.Content.ReadFromJsonAsync(WireJson.Default.PackStored, ct))!;
    }

    /// <summary>
    /// Commits a recovery point: the body is a <see cref="CompleteBackupRequest"/> whose <c>chunks</c> (every referenced
    /// chunk id, base64) is written straight from <paramref name="chunks"/> onto the connection, a few KiB at a time, rather
    /// than built as a string and a serialized copy of it (tens of bytes per chunk, twice, in pooled arrays that outlive the job).
    /// The item catalog gets <paramref name="changes"/> when given (only what changed since the last catalogued recovery point),
    /// else every item of <paramref name="items"/>.
    /// </summary>
    public Task CompleteBackupAsync(
        Guid agentId, string jobPath, IReadOnlyList<string> tree, IReadOnlyCollection<ChunkId> chunks, int files, int directories,
        long bytesRead, IReadOnlyList<SkippedItem>? skipped, IReadOnlyList<TreeEntry> items, CatalogChanges? changes, CancellationToken ct) =>
        RetryingAsync("commit the backup", async token =>
        {
            using var content = new CompleteBackupContent(tree, chunks, files, directories, bytesRead, skipped, items, changes);
            content.Headers.ContentType = new MediaTypeHeaderValue("application/json") { CharSet = "utf-8" };
            using var response = await http.PostAsync($"api/agents/{agentId}/{jobPath}/complete", content, token);
            await EnsureSuccessAsync(response, "commit the backup", token);
        }, ct);

    private sealed class CompleteBackupContent(
        IReadOnlyList<string> tree, IReadOnlyCollection<ChunkId> chunks, int files, int directories, long bytesRead, IReadOnlyList<SkippedItem>? skipped,
        IReadOnlyList<TreeEntry> items, CatalogChanges? changes)
        : HttpContent
    {
        protected override async Task SerializeToStreamAsync(Stream stream, System.Net.TransportContext? context, CancellationToken ct)
        {
            var options = WireJson.Default.Options;
            string Name(string property) => options.PropertyNamingPolicy?.ConvertName(property) ?? property;
            await using var writer = new System.Text.Json.Utf8JsonWriter(stream);
            writer.WriteStartObject();
            writer.WriteStartArray(Name(nameof(CompleteBackupRequest.Tree)));
            foreach (var id in tree) writer.WriteStringValue(id);
            writer.WriteEndArray();
            writer.WritePropertyName(Name(nameof(CompleteBackupRequest.Chunks)));
            var batch = new byte[96 * ChunkId.Size]; // a multiple of 3 bytes: each segment encodes without padding
            var used = 0;
            foreach (var id in chunks)
            {
                id.WriteTo(batch.AsSpan(used));
                used += ChunkId.Size;
                if (used < batch.Length) continue;
                writer.WriteBase64StringSegment(batch, isFinalSegment: false);
                used = 0;
                if (writer.BytesPending > 1 << 16) await writer.FlushAsync(ct);
            }
            writer.WriteBase64StringSegment(batch.AsSpan(0, used), isFinalSegment: true);
            writer.WriteNumber(Name(nameof(CompleteBackupRequest.Files)), files);
            writer.WriteNumber(Name(nameof(CompleteBackupRequest.Directories)), directories);
            writer.WriteNumber(Name(nameof(CompleteBackupRequest.BytesRead)), bytesRead);
            writer.WritePropertyName(Name(nameof(CompleteBackupRequest.Skipped)));
            System.Text.Json.JsonSerializer.Serialize(writer, skipped, WireJson.Default.IReadOnlyListSkippedItem);
            if (changes is not null)
            {
                writer.WriteStartObject(Name(nameof(CompleteBackupRequest.ItemChanges)));
                writer.WriteString(Name(nameof(CatalogChanges.Base)), changes.Base);
                writer.WriteStartArray(Name(nameof(CatalogChanges.Added)));
                foreach (var e in changes.Added) await WriteItemAsync(e.Path, e.Kind, e.Size, e.ModifiedAt);
                writer.WriteEndArray();
                writer.WriteStartArray(Name(nameof(CatalogChanges.Removed)));
                foreach (var path in changes.Removed) writer.WriteStringValue(path);
                writer.WriteEndArray();
                writer.WriteEndObject();
            }
            else
            {
                // The catalog's items, one at a time from the tree (no second list of them in memory).
                writer.WriteStartArray(Name(nameof(CompleteBackupRequest.Items)));
                foreach (var e in items) await WriteItemAsync(e.Path, e.Kind, e.Size, new DateTimeOffset(e.MtimeUtcTicks, TimeSpan.Zero));
                writer.WriteEndArray();
            }
            writer.WriteEndObject();
            await writer.FlushAsync(ct);

            // A CatalogEntry written field by field (a serializer call per item cost several times as much).
            async ValueTask WriteItemAsync(string path, EntryKind kind, long size, DateTimeOffset modifiedAt)
            {
                writer.WriteStartObject();
                writer.WriteString(Name(nameof(CatalogEntry.Path)), path);
                writer.WriteString(Name(nameof(CatalogEntry.Kind)), kind.ToString()); // as EntryKind's JSON converter names it
                writer.WriteNumber(Name(nameof(CatalogEntry.Size)), size);
                writer.WriteString(Name(nameof(CatalogEntry.ModifiedAt)), modifiedAt);
                writer.WriteEndObject();
                if (writer.BytesPending > 1 << 16) await writer.FlushAsync(ct);
            }
        }

        protected override Task SerializeToStreamAsync(Stream stream, System.Net.TransportContext? context) =>
            SerializeToStreamAsync(stream, context, CancellationToken.None);

        protected override bool TryComputeLength(out long length)
        {
            length = 0;
            return false;
        }
    }

    /// <summary>The repository's key file; null when the server has no key yet.</summary>
    public Task<byte[]?> KeyFileAsync(Guid agentId, CancellationToken ct) =>
        RetryingAsync("fetch the repository key file", token => KeyFileOnceAsync(agentId, token), ct);

    private async Task<byte[]?> KeyFileOnceAsync(Guid agentId, CancellationToken ct)
    {
        using var response = await http.GetAsync($"api/agents/{agentId}/key", ct);
        if (response.StatusCode == HttpStatusCode.NotFound) return null;
        await EnsureSuccessAsync(response, "fetch the repository key file", ct);
        return await response.Content.ReadAsByteArrayAsync(ct);
    }

    /// <summary>Every chunk id the server holds.</summary>
    public Task<HashSet<ChunkId>> KnownChunksAsync(Guid agentId, CancellationToken ct) =>
        RetryingAsync("list the chunks the server holds", token => KnownChunksOnceAsync(agentId, token), ct);

    private async Task<HashSet<ChunkId>> KnownChunksOnceAsync(Guid agentId, CancellationToken ct)
    {
        using var response = await http.GetAsync($"api/agents/{agentId}/chunks", HttpCompletionOption.ResponseHeadersRead, ct);
        await EnsureSuccessAsync(response, "list the chunks the server holds", ct);
        await using var body = await response.Content.ReadAsStreamAsync(ct);
        // Sized from the body's length up front: growing by doubling would leave each smaller table behind as garbage.
        var known = new HashSet<ChunkId>((int)Math.Min(response.Content.Headers.ContentLength ?? 0, 1L << 30) / ChunkId.Size);
        var id = new byte[ChunkId.Size];
        while (true)
        {
            var read = await body.ReadAtLeastAsync(id, ChunkId.Size, throwOnEndOfStream: false, ct);
            if (read == 0) return known;
            if (read < ChunkId.Size) throw new InvalidDataException("The server's chunk list ended inside a chunk id.");
            known.Add(new ChunkId(id));
        }
    }

    public Task<Dictionary<ChunkId, ChunkLocation>> RestoreIndexAsync(Guid agentId, Guid restoreId, CancellationToken ct) =>
        RetryingAsync("fetch the restore's chunk index", token => RestoreIndexOnceAsync(agentId, restoreId, token), ct);

    private async Task<Dictionary<ChunkId, ChunkLocation>> RestoreIndexOnceAsync(Guid agentId, Guid restoreId, CancellationToken ct)
    {
        using var response = await http.GetAsync($"api/agents/{agentId}/restores/{restoreId}/index", ct);
        await EnsureSuccessAsync(response, "fetch the restore's chunk index", ct);
        var locations = await response.Content.ReadFromJsonAsync(WireJson.Default.ListChunkLocation, ct) ?? [];
        return locations.ToDictionary(l => ChunkId.Parse(l.ChunkId));
    }

    public async Task<JobLeaseRenewal> HeartbeatAsync(Guid agentId, Guid jobId, CancellationToken ct)
    {
        using var response = await http.PostAsync($"api/agents/{agentId}/jobs/{jobId}/heartbeat", null, ct);
        await EnsureSuccessAsync(response, "renew the job's lease", ct);
        return (await response.Content.ReadFromJsonAsync(WireJson.Default.JobLeaseRenewal, ct))!;
    }

    /// <summary>Gives the running job back to the server, which queues it again at once (the agent is stopping).</summary>
    public async Task ReleaseJobAsync(Guid agentId, Guid jobId, string reason, CancellationToken ct)
    {
        using var response = await http.PostAsJsonAsync($"api/agents/{agentId}/jobs/{jobId}/release", new ReleaseJobRequest(reason), WireJson.Default.ReleaseJobRequest, ct);
        await EnsureSuccessAsync(response, "release the job", ct);
    }

    public Task FailBackupAsync(Guid agentId, string jobPath, string reason, CancellationToken ct) =>
        RetryingAsync("report the failed backup", token => FailBackupOnceAsync(agentId, jobPath, reason, token), ct);

    private async Task FailBackupOnceAsync(Guid agentId, string jobPath, string reason, CancellationToken ct)
    {
        using var response = await http.PostAsJsonAsync($"api/agents/{agentId}/{jobPath}/fail", new FailJobRequest(reason), WireJson.Default.FailJobRequest, ct);
        await EnsureSuccessAsync(response, "report the failed backup", ct);
    }

    public Task<Manifest> RestoreManifestAsync(Guid agentId, Guid restoreId, CancellationToken ct) =>
        RetryingAsync("fetch the manifest", token => RestoreManifestOnceAsync(agentId, restoreId, token), ct);

    private async Task<Manifest> RestoreManifestOnceAsync(Guid agentId, Guid restoreId, CancellationToken ct)
    {
        using var response = await http.GetAsync($"api/agents/{agentId}/restores/{restoreId}/manifest", ct);
        await EnsureSuccessAsync(response, "fetch the manifest", ct);
        return Manifest.FromBytes(await response.Content.ReadAsByteArrayAsync(ct));
    }

    /// <summary>A pack of the recovery point being restored, from the tier the restore reads or, <paramref name="fromVault"/>, the vault's copy.</summary>
    public async Task DownloadPackAsync(Guid agentId, Guid restoreId, string packId, Stream destination, bool fromVault, CancellationToken ct)
    {
        using var response = await http.GetAsync(
            $"api/agents/{agentId}/restores/{restoreId}/packs/{packId}{(fromVault ? "?tier=Vault" : "")}", HttpCompletionOption.ResponseHeadersRead, ct);
        await EnsureSuccessAsync(response, $"download pack {packId}", ct);
        await using var body = await response.Content.ReadAsStreamAsync(ct);
        await body.CopyToAsync(destination, 1 << 18, ct);
    }

    public Task CompleteRestoreAsync(
        Guid agentId, Guid restoreId, int files, long bytes, int skippedExisting, IReadOnlyList<FailedItem>? failed, CancellationToken ct) =>
        RetryingAsync("report the restore", token => CompleteRestoreOnceAsync(agentId, restoreId, files, bytes, skippedExisting, failed, token), ct);

    private async Task CompleteRestoreOnceAsync(
        Guid agentId, Guid restoreId, int files, long bytes, int skippedExisting, IReadOnlyList<FailedItem>? failed, CancellationToken ct)
    {
        using var response = await http.PostAsJsonAsync($"api/agents/{agentId}/restores/{restoreId}/complete",
            new CompleteRestoreRequest(files, bytes, skippedExisting, failed is { Count: > 0 } ? [.. failed.Select(Bounded)] : null),
            WireJson.Default.CompleteRestoreRequest, ct);
        await EnsureSuccessAsync(response, "report the restore", ct);
    }

    // The server takes reasons of up to 2,000 characters; the operating system's message naming a long path can be longer.
    private static FailedItem Bounded(FailedItem item) =>
        item.Reason.Length <= MaxReason ? item : item with { Reason = item.Reason[..(MaxReason - 1)] + "…" };

    private const int MaxReason = 2_000;

    public Task FailRestoreAsync(Guid agentId, Guid restoreId, string reason, CancellationToken ct) =>
        RetryingAsync("report the failed restore", token => FailRestoreOnceAsync(agentId, restoreId, reason, token), ct);

    private async Task FailRestoreOnceAsync(Guid agentId, Guid restoreId, string reason, CancellationToken ct)
    {
        using var response = await http.PostAsJsonAsync($"api/agents/{agentId}/restores/{restoreId}/fail", new FailJobRequest(reason), WireJson.Default.FailJobRequest, ct);
        await EnsureSuccessAsync(response, "report the failed restore", ct);
    }

    private static async Task EnsureSuccessAsync(HttpResponseMessage response, string what, CancellationToken ct)
    {
        if (response.IsSuccessStatusCode) return;
        var body = await response.Content.ReadAsStringAsync(ct);
        throw new ServerRejectedException(response.StatusCode, $"Could not {what}: the server answered {(int)response.StatusCode} {response.ReasonPhrase}. {body}",
            ProblemCode(body));
    }

    /// <summary>The <c>code</c> of a ProblemDetails body, if it is one and has it.</summary>
    private static string? ProblemCode(string body)
    {
        try
        {
            using var problem = System.Text.Json.JsonDocument.Parse(body);
            return problem.RootElement.ValueKind == System.Text.Json.JsonValueKind.Object
                && problem.RootElement.TryGetProperty("code", out var code) && code.ValueKind == System.Text.Json.JsonValueKind.String
                ? code.GetString()
                : null;
        }
        catch (System.Text.Json.JsonException)
        {
            return null;
        }
    }
}

/// <summary>The server refused a request: its status, and the problem's <c>code</c> when it gave one.</summary>
public sealed class ServerRejectedException(HttpStatusCode status, string message, string? code = null) : Exception(message)
{
    public HttpStatusCode Status { get; } = status;

    public string? Code { get; } = code;
}
