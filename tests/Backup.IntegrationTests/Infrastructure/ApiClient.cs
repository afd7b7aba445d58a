using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Backup.Storage.Contracts;

namespace Backup.IntegrationTests.Infrastructure;

/// <summary>Operator and agent calls as a real client makes them: JSON over HTTP, nothing in-process.</summary>
public sealed class ApiClient(HttpClient http)
{
    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    public HttpClient Http => http;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>The passphrase tests protect their repository key with (16 characters or more).</summary>
    public const string Passphrase = "correct horse battery staple 2026";

    /// <summary>Sets up the repository's encryption key, as an administrator does once per server.</summary>
    public async Task CreateRepositoryKeyAsync(string passphrase = Passphrase)
    {
        var response = await http.PutAsJsonAsync("/api/repository/key", new { passphrase }, Ct);
        response.StatusCode.ShouldBe(HttpStatusCode.Created, await response.Content.ReadAsStringAsync(Ct));
    }

    /// <summary>A fresh security PIN (5 minutes, one use) for a destructive operation; the caller must be an admin.</summary>
    public async Task<string> PinAsync()
    {
        var response = await http.PostAsync("/api/access/security-pin", null, Ct);
        response.StatusCode.ShouldBe(HttpStatusCode.OK, await response.Content.ReadAsStringAsync(Ct));
        return (await response.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("pin").GetString()!;
    }

    public async Task<string> IssueTokenAsync(int validForMinutes = 10)
    {
        var response = await http.PostAsJsonAsync("/api/enrolment-tokens", new { validForMinutes }, Ct);
        response.StatusCode.ShouldBe(HttpStatusCode.Created);
        return (await response.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("token").GetString()!;
    }

    public async Task<EnrolAgentResponse> EnrolAsync(string machine = "machine-1")
    {
        var response = await http.PostAsJsonAsync("/api/agents/enrol", new EnrolAgentRequest(await IssueTokenAsync(), machine), Ct);
        response.StatusCode.ShouldBe(HttpStatusCode.Created);
        return (await response.Content.ReadFromJsonAsync<EnrolAgentResponse>(Ct))!;
    }

    public async Task<Guid> CreateGroupAsync(string name)
    {
        var response = await http.PostAsJsonAsync("/api/protection-groups", new { name }, Ct);
        response.StatusCode.ShouldBe(HttpStatusCode.Created, await response.Content.ReadAsStringAsync(Ct));
        return await IdAsync(response);
    }

    public async Task<Guid> AddFolderAsync(Guid groupId, Guid agentId, string path)
    {
        var response = await http.PostAsJsonAsync($"/api/protection-groups/{groupId}/data-sources", new { agentId, kind = "Folder", path }, Ct);
        response.StatusCode.ShouldBe(HttpStatusCode.Created, await response.Content.ReadAsStringAsync(Ct));
        return await IdAsync(response);
    }

    public async Task<Guid> RequestBackupAsync(Guid dataSourceId)
    {
        var response = await http.PostAsync($"/api/data-sources/{dataSourceId}/backups", null, Ct);
        response.StatusCode.ShouldBe(HttpStatusCode.Accepted, await response.Content.ReadAsStringAsync(Ct));
        return await IdAsync(response);
    }

    /// <summary>"Synchronise now": the id of the synchronisation queued for the data source's agent.</summary>
    public async Task<Guid> RequestSyncAsync(Guid dataSourceId)
    {
        var response = await http.PostAsync($"/api/data-sources/{dataSourceId}/synchronisations", null, Ct);
        response.StatusCode.ShouldBe(HttpStatusCode.Accepted, await response.Content.ReadAsStringAsync(Ct));
        return await IdAsync(response);
    }

    /// <summary>An enrolled agent with one folder and a backup of it waiting in its queue.</summary>
    public async Task<(EnrolAgentResponse Agent, Guid RecoveryPoint)> QueuedBackupAsync(string path = "/srv/files")
    {
        var agent = await EnrolAsync();
        var group = await CreateGroupAsync($"g-{Guid.NewGuid():N}");
        var source = await AddFolderAsync(group, agent.AgentId, path);
        return (agent, await RequestBackupAsync(source));
    }

    /// <summary>The agent's poll for its next job (200 with the job, or 204).</summary>
    public Task<HttpResponseMessage> PollAsync(EnrolAgentResponse agent) =>
        http.SendAsync(AsAgent(HttpMethod.Post, $"/api/agents/{agent.AgentId}/jobs/next", agent.Credential), Ct);

    public async Task<JsonElement> GetJsonAsync(string url)
    {
        var response = await http.GetAsync(url, Ct);
        response.StatusCode.ShouldBe(HttpStatusCode.OK, await response.Content.ReadAsStringAsync(Ct));
        return await response.Content.ReadFromJsonAsync<JsonElement>(Ct);
    }

    /// <summary>Polls a read-model URL (async projections) until <paramref name="done"/> holds.</summary>
    public async Task<JsonElement> WaitForAsync(string url, Func<JsonElement, bool> done, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(30));
        JsonElement last = default;
        while (DateTime.UtcNow < deadline)
        {
            var response = await http.GetAsync(url, Ct);
            if (response.StatusCode == HttpStatusCode.OK)
            {
                last = await response.Content.ReadFromJsonAsync<JsonElement>(Ct);
                if (done(last)) return last;
            }
            await Task.Delay(200, Ct);
        }
        throw new TimeoutException($"{url} did not reach the expected state; last: {last}");
    }

    public static HttpRequestMessage AsAgent(HttpMethod method, string url, string credential, HttpContent? content = null)
    {
        var request = new HttpRequestMessage(method, url) { Content = content };
        request.Headers.Authorization = new AuthenticationHeaderValue(AgentHeaders.Scheme, credential);
        return request;
    }

    /// <summary>The agent uploads one pack of a running backup (or, with <paramref name="job"/> "syncs", synchronisation); asserts it was accepted.</summary>
    public async Task<PackStored> UploadPackAsync(EnrolAgentResponse agent, Guid recoveryPoint, TestPack pack, string job = "recovery-points")
    {
        var response = await http.SendAsync(AsAgent(HttpMethod.Put,
            $"/api/agents/{agent.AgentId}/{job}/{recoveryPoint}/packs/{pack.Id}", agent.Credential, new ByteArrayContent(pack.Bytes)), Ct);
        response.StatusCode.ShouldBe(HttpStatusCode.OK, await response.Content.ReadAsStringAsync(Ct));
        return (await response.Content.ReadFromJsonAsync<PackStored>(Json, Ct))!;
    }

    /// <summary>The agent commits a backup (or, with <paramref name="job"/> "syncs", ends a synchronisation).</summary>
    public Task<HttpResponseMessage> CommitAsync(EnrolAgentResponse agent, Guid recoveryPoint, CompleteBackupRequest request, string job = "recovery-points") =>
        http.SendAsync(AsAgent(HttpMethod.Post,
            $"/api/agents/{agent.AgentId}/{job}/{recoveryPoint}/complete", agent.Credential, JsonContent.Create(request, options: Backup.Storage.Format.Manifest.Json)), Ct);

    /// <summary>The chunk ids the server tells agents it holds.</summary>
    public async Task<List<Backup.Storage.Crypto.ChunkId>> KnownChunksAsync(EnrolAgentResponse agent)
    {
        var response = await http.SendAsync(AsAgent(HttpMethod.Get, $"/api/agents/{agent.AgentId}/chunks", agent.Credential), Ct);
        response.StatusCode.ShouldBe(HttpStatusCode.OK);
        return (await response.Content.ReadAsByteArrayAsync(Ct)).Chunk(Backup.Storage.Crypto.ChunkId.Size).Select(b => new Backup.Storage.Crypto.ChunkId(b)).ToList();
    }

    public static async Task<Guid> IdAsync(HttpResponseMessage response) =>
        (await response.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("id").GetGuid();
}
