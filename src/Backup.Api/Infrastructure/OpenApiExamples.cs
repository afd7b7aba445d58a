using System.Collections;
using System.Reflection;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using Backup.Api.Access;
using Backup.Api.DataSources;
using Backup.Api.Enrolling;
using Backup.Api.ProtectionGroups;
using Backup.Api.RecoveryPoints;
using Backup.Commands.DataSources;
using Backup.Commands.ProtectionGroups;
using Backup.Commands.RecoveryPoints;
using Backup.Commands.Restores;
using Backup.Projections;
using Backup.Projections.Compliance;
using Backup.Projections.Items;
using Backup.Projections.RecoveryPoints;
using Backup.Storage.Contracts;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Mvc;
using Microsoft.OpenApi;
using Swashbuckle.AspNetCore.SwaggerGen;

namespace Backup.Api.Infrastructure;

/// <summary>
/// Every operation in the OpenAPI document has examples (each parameter, each request body, each JSON response) and its error
/// responses as ProblemDetails: 400 when it takes input, 401/403 unless anonymous, 404 when its route names a resource.
/// Request bodies have hand-written examples that the API accepts as they are (a test sends them); responses get a generated
/// one that follows the type's shape.
/// </summary>
public sealed partial class OpenApiExamples : IOperationFilter
{
    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { Converters = { new JsonStringEnumConverter() } };

    private static readonly DateTimeOffset SampleTime = new(2026, 6, 30, 21, 0, 0, TimeSpan.Zero);

    /// <summary>Request bodies as a person would send them.</summary>
    public static readonly IReadOnlyDictionary<Type, object> RequestSamples = new Dictionary<Type, object>
    {
        [typeof(CreateProtectionGroupRequest)] = new CreateProtectionGroupRequest("File servers"),
        [typeof(AddDataSourceRequest)] = new AddDataSourceRequest(SampleGuid("agentId"), DataSourceKind.Folder, "/srv/files", [], ["**/*.tmp"]),
        [typeof(DataSourceFiltersRequest)] = new DataSourceFiltersRequest(["projects/**"], ["**/*.tmp", "**/node_modules"]),
        [typeof(ShortTermPolicyRequest)] = new ShortTermPolicyRequest(14, SynchronisationMode.Interval, 15,
            [new TimeOnly(9, 0), new TimeOnly(21, 0)], [.. Enum.GetValues<DayOfWeek>()], "Europe/Amsterdam"),
        [typeof(OnlinePolicyRequest)] = new OnlinePolicyRequest([new TimeOnly(1, 0), new TimeOnly(13, 0)], OnlineSchedule.Daily, [], 30, 8, 12, 2),
        [typeof(OnlineThrottlingRequest)] = new OnlineThrottlingRequest(4096, 102400,
            [DayOfWeek.Monday, DayOfWeek.Tuesday, DayOfWeek.Wednesday, DayOfWeek.Thursday, DayOfWeek.Friday], new TimeOnly(8, 0), new TimeOnly(18, 0)),
        [typeof(AlertThresholdRequest)] = new AlertThresholdRequest(2),
        [typeof(RequestRestoreRequest)] = new RequestRestoreRequest(StorageTier.Vault, "/srv/restored", ["projects/report.docx"], ExistingItems.KeepBoth),
        [typeof(IssueApiKeyRequest)] = new IssueApiKeyRequest("audit-2026", "auditor"),
        [typeof(IssueEnrolmentTokenRequest)] = new IssueEnrolmentTokenRequest(60),
        [typeof(EnrolAgentRequest)] = new EnrolAgentRequest("<token from POST /api/enrolment-tokens>", "fileserver-01"),
        [typeof(CreateRepositoryKeyRequest)] = new CreateRepositoryKeyRequest("correct horse battery staple"),
        [typeof(ChangePassphraseRequest)] = new ChangePassphraseRequest("correct horse battery staple", "a new passphrase of 16+ characters"),
        [typeof(FailJobRequest)] = new FailJobRequest("The protected folder /srv/files does not exist."),
        [typeof(CompleteRestoreRequest)] = new CompleteRestoreRequest(1200, 734003200, 3),
        [typeof(CompleteBackupRequest)] = new CompleteBackupRequest(
            [new string('a', 64)], Convert.ToBase64String(new byte[64]), 1200, 85, 734003200, [],
            [new CatalogEntry("projects/report.docx", Storage.Format.EntryKind.File, 48213, SampleTime)]),
    };

    /// <summary>Query and route values by parameter name; other parameters get a value of their schema's type.</summary>
    private static readonly IReadOnlyDictionary<string, JsonNode> ParameterSamples = new Dictionary<string, JsonNode>(StringComparer.OrdinalIgnoreCase)
    {
        ["limit"] = 50,
        ["from"] = "2026-06-01T00:00:00Z",
        ["to"] = "2026-07-01T00:00:00Z",
        ["asOf"] = "2026-01-31T23:59:59Z",
        ["tier"] = "Vault",
        ["path"] = "/srv/files/projects/report.docx",
        ["under"] = "/srv/files/projects",
        ["name"] = "*.docx",
        ["data"] = "retain",
        ["format"] = "csv",
        ["packId"] = new string('3', 64),
        ["eventType"] = "recovery_point_created.v1",
        ["actor"] = "user:alice",
        [Commands.Access.SecurityPin.Header] = "04817263",
    };

    public void Apply(OpenApiOperation operation, OperationFilterContext context)
    {
        foreach (var parameter in operation.Parameters?.OfType<OpenApiParameter>() ?? [])
            parameter.Example ??= parameter.Name == "after" ? CursorFor(context.ApiDescription.RelativePath ?? "")
                : ParameterSamples.TryGetValue(parameter.Name ?? "", out var sample) && Fits(sample, parameter.Schema) ? sample.DeepClone() : ForSchema(parameter);

        var body = context.ApiDescription.ParameterDescriptions.FirstOrDefault(p => p.Source == Microsoft.AspNetCore.Mvc.ModelBinding.BindingSource.Body);
        if (operation.RequestBody?.Content is { } requestContent && body is not null)
        {
            var example = RequestSamples.TryGetValue(body.Type, out var sample) ? JsonSerializer.SerializeToNode(sample, body.Type, Json) : Generate(body.Type, "", 0);
            foreach (var media in requestContent.Values.OfType<OpenApiMediaType>()) media.Example ??= example?.DeepClone();
        }

        operation.Responses ??= [];
        foreach (var type in context.ApiDescription.SupportedResponseTypes.Where(r => r.StatusCode is >= 200 and < 300 && r.Type is not null && r.Type != typeof(void)))
            if (operation.Responses.TryGetValue(type.StatusCode.ToString(), out var response) && response.Content is { } content)
                foreach (var media in content.Where(m => m.Key.Contains("json", StringComparison.Ordinal)).Select(m => m.Value).OfType<OpenApiMediaType>())
                    media.Example ??= Generate(type.Type!, "", 0);

        var metadata = context.ApiDescription.ActionDescriptor.EndpointMetadata;
        var takesInput = context.ApiDescription.ParameterDescriptions.Any(p => p.Source != Microsoft.AspNetCore.Mvc.ModelBinding.BindingSource.Services);
        if (takesInput) Problem(operation, context, "400", "The request is not valid: errors names each bad field or parameter.");
        if (!metadata.OfType<IAllowAnonymous>().Any())
        {
            Problem(operation, context, "401", "No credential, or one that is not valid.");
            Problem(operation, context, "403", "The credential's role may not do this.");
        }
        if (NamesResource().IsMatch(context.ApiDescription.RelativePath ?? ""))
            Problem(operation, context, "404", "No resource has this id.");
        // One job lifecycle for every kind of agent work (docs: "A backup, step by step"): an agent's report on a job that is no
        // longer its running job is refused, and what it uploads or commits is checked against what the server holds.
        if (AgentJobWrite().IsMatch(context.ApiDescription.RelativePath ?? "") && context.ApiDescription.HttpMethod is "POST" or "PUT")
        {
            Problem(operation, context, "409", "The job is not running: it ended, was released or its lease expired.");
            if (AgentUpload().IsMatch(context.ApiDescription.RelativePath ?? ""))
                Problem(operation, context, "422", "What was sent is damaged, or references chunks the server does not hold.");
        }
    }

    [System.Text.RegularExpressions.GeneratedRegex(@"^/?api/agents/\{agentId[^}]*\}/(jobs/\{jobId|recovery-points|syncs|restores)/")]
    private static partial System.Text.RegularExpressions.Regex AgentJobWrite();

    [System.Text.RegularExpressions.GeneratedRegex(@"/(recovery-points|syncs)/[^/]+/(packs/\{packId[^}]*\}|complete)$")]
    private static partial System.Text.RegularExpressions.Regex AgentUpload();

    private static void Problem(OpenApiOperation operation, OperationFilterContext context, string status, string description)
    {
        // A bare NotFound() still leaves as ProblemDetails (UseStatusCodePages writes one): document that body too.
        if (operation.Responses!.TryGetValue(status, out var existing) && (existing.Content is { Count: > 0 } || existing is not OpenApiResponse)) return;
        var schema = context.SchemaGenerator.GenerateSchema(status == "400" ? typeof(HttpValidationProblemDetails) : typeof(ProblemDetails), context.SchemaRepository);
        operation.Responses[status] = new OpenApiResponse
        {
            Description = existing?.Description ?? description,
            Content = new Dictionary<string, IOpenApiMediaType>
            {
                ["application/problem+json"] = new OpenApiMediaType
                {
                    Schema = schema,
                    Example = new JsonObject { ["type"] = $"https://tools.ietf.org/html/rfc9110", ["title"] = description, ["status"] = int.Parse(status) },
                },
            },
        };
    }

    [System.Text.RegularExpressions.GeneratedRegex(@"\{[A-Za-z]*Id(:[^}]*)?\}")]
    private static partial System.Text.RegularExpressions.Regex NamesResource();

    /// <summary>
    /// Whether a sample picked by name is of the parameter's type: one name can mean different things on different operations
    /// (audit/verify's 'from' is a sequence, the other lists' a date).
    /// </summary>
    private static bool Fits(JsonNode sample, IOpenApiSchema? schema) => schema switch
    {
        { Type: { } t } when t.HasFlag(JsonSchemaType.Integer) || t.HasFlag(JsonSchemaType.Number) => sample.GetValueKind() == JsonValueKind.Number,
        { Format: "date-time" } => sample.GetValueKind() == JsonValueKind.String && DateTimeOffset.TryParse(sample.GetValue<string>(), System.Globalization.CultureInfo.InvariantCulture, out _),
        { Type: { } t } when t.HasFlag(JsonSchemaType.String) => sample.GetValueKind() == JsonValueKind.String,
        _ => true,
    };

    private static JsonNode ForSchema(OpenApiParameter parameter) => parameter.Schema switch
    {
        { Format: "uuid" } => SampleGuid(parameter.Name ?? "").ToString(),
        { Format: "date-time" } => SampleTime.ToString("O"),
        { Enum: { Count: > 0 } values } => values[0]!.DeepClone(),
        { Type: { } t } when t.HasFlag(JsonSchemaType.Integer) => 1,
        { Type: { } t } when t.HasFlag(JsonSchemaType.Boolean) => true,
        _ => "example",
    };

    private static Guid SampleGuid(string name) =>
        new(System.Security.Cryptography.MD5.HashData(System.Text.Encoding.UTF8.GetBytes($"example:{name.ToLowerInvariant()}")));

    /// <summary>A value of <paramref name="type"/>'s JSON shape, with plausible leaves picked by property name.</summary>
    internal static JsonNode? Generate(Type type, string name, int depth)
    {
        type = Nullable.GetUnderlyingType(type) ?? type;
        if (type == typeof(string)) return StringFor(name);
        if (type == typeof(Guid)) return SampleGuid(name).ToString();
        if (type == typeof(bool)) return !name.Contains("error", StringComparison.OrdinalIgnoreCase);
        if (type == typeof(DateTimeOffset) || type == typeof(DateTime)) return SampleTime.ToString("O");
        if (type == typeof(TimeOnly)) return "21:00:00";
        if (type == typeof(DateOnly)) return "2026-06-30";
        if (type == typeof(TimeSpan)) return "00:05:00";
        if (type.IsEnum) return JsonSerializer.SerializeToNode(Enum.GetValues(type).GetValue(0), type, Json);
        if (type == typeof(int) || type == typeof(long) || type == typeof(short)) return NumberFor(name);
        if (type == typeof(double) || type == typeof(float) || type == typeof(decimal)) return 99.5;
        if (type == typeof(byte[])) return Convert.ToBase64String(new byte[8]);
        if (type == typeof(JsonElement) || type == typeof(JsonNode) || type == typeof(object)) return new JsonObject();
        if (depth > 4) return null;
        if (type.GetInterfaces().Append(type).FirstOrDefault(i => i.IsGenericType && i.GetGenericTypeDefinition() == typeof(IDictionary<,>)) is { } dictionary)
            return new JsonObject { ["key"] = Generate(dictionary.GetGenericArguments()[1], name, depth + 1) };
        if (type != typeof(string) && typeof(IEnumerable).IsAssignableFrom(type))
        {
            var element = type.IsArray ? type.GetElementType()! : type.GetInterfaces().Append(type)
                .FirstOrDefault(i => i.IsGenericType && i.GetGenericTypeDefinition() == typeof(IEnumerable<>))?.GetGenericArguments()[0] ?? typeof(object);
            return new JsonArray(Generate(element, Singular(name), depth + 1));
        }
        var json = new JsonObject();
        foreach (var property in type.GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.GetIndexParameters().Length == 0))
        {
            if (property.GetCustomAttribute<JsonIgnoreAttribute>() is { Condition: JsonIgnoreCondition.Always }) continue;
            var key = property.GetCustomAttribute<JsonPropertyNameAttribute>()?.Name ?? JsonNamingPolicy.CamelCase.ConvertName(property.Name);
            json[key] = Generate(property.PropertyType, property.Name, depth + 1);
        }
        return json;
    }

    /// <summary>A cursor of the list's own kind: each list refuses another list's cursor (400).</summary>
    private static JsonNode CursorFor(string route) => route.TrimStart('/') switch
    {
        var r when r.StartsWith("api/compliance", StringComparison.Ordinal) =>
            ComplianceCursor.Encode(SampleGuid("groupId"), SampleGuid("dataSourceId"), "/srv/files"),
        var r when r.StartsWith("api/items", StringComparison.Ordinal) => ItemCursor.Encode("/srv/files/projects/report.docx", SampleGuid("dataSourceId")),
        var r when r.StartsWith("api/jobs", StringComparison.Ordinal) => SequenceCursor.Jobs.Encode(12345),
        var r when r.StartsWith("api/audit", StringComparison.Ordinal) => 12345, // the audit trail pages by the event sequence itself
        _ => SequenceCursor.RecoveryPoints.Encode(12345),
    };

    private static string Singular(string name) => name.EndsWith('s') ? name[..^1] : name;

    private static JsonNode StringFor(string name) => name.ToLowerInvariant() switch
    {
        "relativepath" => "projects/report.docx",
        "pin" => "04817263",
        "include" => "projects/**",
        "exclude" => "**/*.tmp",
        "token" or "credential" or "key" => $"{SampleGuid(name)}.q3Xw9vB2mT7kLp4sZr8eYc",
        "eventtype" => "recovery_point_created.v1",
        "correlationid" => "4bf92f3577b34da6a3ce929d0e0e4736",
        "causationid" => "RequestBackup",
        "message" => "Data source /srv/files has had no recovery point for 26 hours.",
        "resolution" => "A recovery point of /srv/files was created.",
        "detail" => "older than the 14 days kept on disk",
        "lastleaseexpiry" => "lease expired at 2026-06-30T21:02:00.0000000+00:00 without a heartbeat",
        "outcome" => "Sound",
        "kdf" => Storage.Crypto.KdfParameters.Argon2id,
        var n when n.Contains("path") => "/srv/files/projects/report.docx",
        var n when n.Contains("packid") || n.Contains("sha") || n.Contains("hash") || n.Contains("chunk") => new string('3', 64),
        var n when n.Contains("reason") || n.Contains("error") || n.Contains("problem") => "The vault did not answer within 100 s.",
        var n when n.Contains("actor") || n.Contains("by") => "operator:alice",
        var n when n.Contains("machine") => "fileserver-01",
        var n when n.Contains("zone") => "Europe/Amsterdam",
        var n when n.Contains("after") || n.Contains("cursor") => SequenceCursor.RecoveryPoints.Encode(12345),
        var n when n.Contains("name") => "File servers",
        var n when n.Contains("role") => "operator",
        _ => "example",
    };

    private static JsonNode NumberFor(string name) => name.ToLowerInvariant() switch
    {
        var n when n.Contains("bytes") => 734003200,
        var n when n.Contains("files") => 1200,
        var n when n.Contains("sequence") => 12345,
        var n when n.Contains("version") => 3,
        _ => 2,
    };
}
