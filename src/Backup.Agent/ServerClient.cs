using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using Backup.Storage.Contracts;
using Backup.Storage.Crypto;
using Backup.Storage.Format;

namespace Backup.Agent;

/// <summary>Everything the agent says to the backup server, over HTTP only.</summary>
public sealed class ServerClient(HttpClient http)
{
    public void UseCredential(string credential) =>
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue(AgentHeaders.Scheme, credential);

    public async Task<EnrolAgentResponse> EnrolAsync(string token, string machineName, CancellationToken ct)
    {
        using var response = await http.PostAsJsonAsync("api/agents/enrol", new EnrolAgentRequest(token, machineName), ct);
        await EnsureSuccessAsync(response, "enrol", ct);
        return (await response.Content.ReadFromJsonAsync<EnrolAgentResponse>(ct))!;
    }

    public async Task<AgentJob?> NextJobAsync(Guid agentId, CancellationToken ct)
    {
        using var response = await http.PostAsync($"api/agents/{agentId}/jobs/next", null, ct);
        if (response.StatusCode == HttpStatusCode.NoContent) return null;
        await EnsureSuccessAsync(response, "poll for jobs", ct);
        return await response.Content.ReadFromJsonAsync<AgentJob>(ct);
    }

    public async Task<PackStored> UploadPackAsync(Guid agentId, Guid recoveryPointId, string packId, string file, CancellationToken ct)
    {
        await using var stream = File.OpenRead(file);
        using var content = new StreamContent(stream, 1 << 20);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        content.Headers.ContentLength = stream.Length;
        using var response = await http.PutAsync($"api/agents/{agentId}/recovery-points/{recoveryPointId}/packs/{packId}", content, ct);
        await EnsureSuccessAsync(response, $"upload pack {packId}", ct);
        return (await response.Content.ReadFromJsonAsync<PackStored>(ct))!;
    }

    public async Task CompleteBackupAsync(Guid agentId, Guid recoveryPointId, CompleteBackupRequest request, CancellationToken ct)
    {
        using var response = await http.PostAsJsonAsync($"api/agents/{agentId}/recovery-points/{recoveryPointId}/complete", request, Manifest.Json, ct);
        await EnsureSuccessAsync(response, "commit the recovery point", ct);
    }

    /// <summary>The repository's key file; null when the server has no key yet.</summary>
    public async Task<byte[]?> KeyFileAsync(Guid agentId, CancellationToken ct)
    {
        using var response = await http.GetAsync($"api/agents/{agentId}/key", ct);
        if (response.StatusCode == HttpStatusCode.NotFound) return null;
        await EnsureSuccessAsync(response, "fetch the repository key file", ct);
        return await response.Content.ReadAsByteArrayAsync(ct);
    }

    /// <summary>Every chunk id the server holds.</summary>
    public async Task<HashSet<ChunkId>> KnownChunksAsync(Guid agentId, CancellationToken ct)
    {
        using var response = await http.GetAsync($"api/agents/{agentId}/chunks", HttpCompletionOption.ResponseHeadersRead, ct);
        await EnsureSuccessAsync(response, "list the chunks the server holds", ct);
        await using var body = await response.Content.ReadAsStreamAsync(ct);
        var known = new HashSet<ChunkId>();
        var id = new byte[ChunkId.Size];
        while (true)
        {
            var read = await body.ReadAtLeastAsync(id, ChunkId.Size, throwOnEndOfStream: false, ct);
            if (read == 0) return known;
            if (read < ChunkId.Size) throw new InvalidDataException("The server's chunk list ended inside a chunk id.");
            known.Add(new ChunkId(id));
        }
    }

    public async Task<Dictionary<ChunkId, ChunkLocation>> RestoreIndexAsync(Guid agentId, Guid restoreId, CancellationToken ct)
    {
        using var response = await http.GetAsync($"api/agents/{agentId}/restores/{restoreId}/index", ct);
        await EnsureSuccessAsync(response, "fetch the restore's chunk index", ct);
        var locations = await response.Content.ReadFromJsonAsync<List<ChunkLocation>>(ct) ?? [];
        return locations.ToDictionary(l => ChunkId.Parse(l.ChunkId));
    }

    public async Task<JobLeaseRenewal> HeartbeatAsync(Guid agentId, Guid jobId, CancellationToken ct)
    {
        using var response = await http.PostAsync($"api/agents/{agentId}/jobs/{jobId}/heartbeat", null, ct);
        await EnsureSuccessAsync(response, "renew the job's lease", ct);
        return (await response.Content.ReadFromJsonAsync<JobLeaseRenewal>(ct))!;
    }

    /// <summary>Gives the running job back to the server, which queues it again at once (the agent is stopping).</summary>
    public async Task ReleaseJobAsync(Guid agentId, Guid jobId, string reason, CancellationToken ct)
    {
        using var response = await http.PostAsJsonAsync($"api/agents/{agentId}/jobs/{jobId}/release", new ReleaseJobRequest(reason), ct);
        await EnsureSuccessAsync(response, "release the job", ct);
    }

    public async Task FailBackupAsync(Guid agentId, Guid recoveryPointId, string reason, CancellationToken ct)
    {
        using var response = await http.PostAsJsonAsync($"api/agents/{agentId}/recovery-points/{recoveryPointId}/fail", new FailJobRequest(reason), ct);
        await EnsureSuccessAsync(response, "report the failed backup", ct);
    }

    public async Task<Manifest> RestoreManifestAsync(Guid agentId, Guid restoreId, CancellationToken ct)
    {
        using var response = await http.GetAsync($"api/agents/{agentId}/restores/{restoreId}/manifest", ct);
        await EnsureSuccessAsync(response, "fetch the manifest", ct);
        return Manifest.FromBytes(await response.Content.ReadAsByteArrayAsync(ct));
    }

    public async Task DownloadPackAsync(Guid agentId, Guid restoreId, string packId, Stream destination, CancellationToken ct)
    {
        using var response = await http.GetAsync($"api/agents/{agentId}/restores/{restoreId}/packs/{packId}", HttpCompletionOption.ResponseHeadersRead, ct);
        await EnsureSuccessAsync(response, $"download pack {packId}", ct);
        await using var body = await response.Content.ReadAsStreamAsync(ct);
        await body.CopyToAsync(destination, 1 << 20, ct);
    }

    public async Task CompleteRestoreAsync(Guid agentId, Guid restoreId, int files, long bytes, int skippedExisting, CancellationToken ct)
    {
        using var response = await http.PostAsJsonAsync($"api/agents/{agentId}/restores/{restoreId}/complete", new CompleteRestoreRequest(files, bytes, skippedExisting), ct);
        await EnsureSuccessAsync(response, "report the restore", ct);
    }

    public async Task FailRestoreAsync(Guid agentId, Guid restoreId, string reason, CancellationToken ct)
    {
        using var response = await http.PostAsJsonAsync($"api/agents/{agentId}/restores/{restoreId}/fail", new FailJobRequest(reason), ct);
        await EnsureSuccessAsync(response, "report the failed restore", ct);
    }

    private static async Task EnsureSuccessAsync(HttpResponseMessage response, string what, CancellationToken ct)
    {
        if (response.IsSuccessStatusCode) return;
        var body = await response.Content.ReadAsStringAsync(ct);
        throw new ServerRejectedException(response.StatusCode, $"Could not {what}: the server answered {(int)response.StatusCode} {response.ReasonPhrase}. {body}");
    }
}

public sealed class ServerRejectedException(HttpStatusCode status, string message) : Exception(message)
{
    public HttpStatusCode Status { get; } = status;
}
