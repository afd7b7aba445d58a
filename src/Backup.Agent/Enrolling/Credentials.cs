using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Backup.Agent.Enrolling;

public sealed record AgentCredential(Guid AgentId, string Credential);

/// <summary>The agent's own JSON (its saved credential, as the serializer's plain defaults write it), generated at build time.</summary>
[JsonSerializable(typeof(AgentCredential))]
internal sealed partial class AgentJson : JsonSerializerContext;

/// <summary>Enrols once with the one-time token and keeps the resulting credential in the state directory.</summary>
public sealed class Credentials(ServerClient server, IOptions<AgentOptions> options, ILogger<Credentials> log)
{
    private string FilePath => Path.Combine(options.Value.StateDirectory, "credential.json");

    public async Task<AgentCredential> LoadOrEnrolAsync(CancellationToken ct)
    {
        if (File.Exists(FilePath))
        {
            var saved = JsonSerializer.Deserialize(await File.ReadAllTextAsync(FilePath, ct), AgentJson.Default.AgentCredential)
                ?? throw new InvalidDataException($"{FilePath} is empty.");
            server.UseCredential(saved.Credential);
            log.LogInformation("Agent {AgentId} uses its saved credential", saved.AgentId);
            return saved;
        }

        var token = EnrolmentToken();
        if (string.IsNullOrWhiteSpace(token))
            throw new InvalidOperationException(
                "This agent is not enrolled yet: give it an enrolment token in a file (Agent:EnrolmentTokenFile) or the environment (Agent__EnrolmentToken).");

        var enrolled = await server.EnrolAsync(token, options.Value.MachineName, ct);
        var credential = new AgentCredential(enrolled.AgentId, enrolled.Credential);
        Directory.CreateDirectory(options.Value.StateDirectory);
        var tmp = FilePath + ".tmp";
        await File.WriteAllTextAsync(tmp, JsonSerializer.Serialize(credential, AgentJson.Default.AgentCredential), ct);
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(tmp, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        File.Move(tmp, FilePath, overwrite: true);
        server.UseCredential(credential.Credential);
        log.LogInformation("Enrolled as agent {AgentId} ({Machine})", credential.AgentId, options.Value.MachineName);
        return credential;
    }

    private string? EnrolmentToken()
    {
        var file = options.Value.EnrolmentTokenFile;
        if (string.IsNullOrEmpty(file)) return options.Value.EnrolmentToken;
        try
        {
            return File.ReadAllText(file).Trim();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new InvalidOperationException($"The enrolment token file {file} cannot be read: {e.Message}", e);
        }
    }
}
