using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Backup.IntegrationTests.Infrastructure;

namespace Backup.IntegrationTests.Api;

/// <summary>The OpenAPI document a client generates code from: every operation with examples, response types and its errors as ProblemDetails.</summary>
public sealed class OpenApiDocumentTests(ApiFactory api) : IClassFixture<ApiFactory>
{
    private readonly ApiClient _client = new(api.CreateClient());
    private static CancellationToken Ct => TestContext.Current.CancellationToken;
    private static readonly string[] Methods = ["get", "put", "post", "delete", "patch"];

    private async Task<List<(string Path, string Method, JsonElement Operation)>> OperationsAsync()
    {
        var doc = await _client.GetJsonAsync("/swagger/v1/swagger.json");
        return doc.GetProperty("paths").EnumerateObject()
            .SelectMany(p => p.Value.EnumerateObject().Where(m => Methods.Contains(m.Name)).Select(m => (p.Name, m.Name, m.Value)))
            .ToList();
    }

    [Fact]
    public async Task Every_operation_has_examples_a_success_response_and_its_errors_as_problem_details()
    {
        var operations = await OperationsAsync();
        operations.Count.ShouldBeGreaterThan(40);
        var missing = new List<string>();
        foreach (var (path, method, operation) in operations)
        {
            var name = $"{method.ToUpperInvariant()} {path}";
            var responses = operation.GetProperty("responses");
            var codes = responses.EnumerateObject().Select(r => r.Name).ToList();
            if (!codes.Any(c => c.StartsWith('2'))) missing.Add($"{name}: no 2xx response");
            foreach (var success in responses.EnumerateObject().Where(r => r.Name.StartsWith('2')))
                if (success.Value.TryGetProperty("content", out var content))
                    foreach (var media in content.EnumerateObject().Where(m => m.Name.Contains("json")))
                        if (!media.Value.TryGetProperty("example", out _)) missing.Add($"{name}: {success.Name} {media.Name} has no example");
            foreach (var parameter in operation.TryGetProperty("parameters", out var ps) ? ps.EnumerateArray() : Enumerable.Empty<JsonElement>())
                if (!parameter.TryGetProperty("example", out _)) missing.Add($"{name}: parameter {parameter.GetProperty("name")} has no example");
            if (operation.TryGetProperty("requestBody", out var body))
                foreach (var media in body.GetProperty("content").EnumerateObject())
                    if (!media.Value.TryGetProperty("example", out _)) missing.Add($"{name}: body {media.Name} has no example");

            var takesInput = operation.TryGetProperty("parameters", out _) || operation.TryGetProperty("requestBody", out _);
            var required = new List<string>();
            if (takesInput) required.Add("400");
            if (path.Contains("Id}", StringComparison.Ordinal)) required.Add("404");
            if (!path.StartsWith("/api/agents/enrol", StringComparison.Ordinal)) required.AddRange(["401", "403"]);
            foreach (var code in required)
            {
                if (!responses.TryGetProperty(code, out var error)) missing.Add($"{name}: no {code} response");
                else if (!error.TryGetProperty("content", out var content) || !content.TryGetProperty("application/problem+json", out _))
                    missing.Add($"{name}: {code} is not application/problem+json");
            }
        }
        missing.ShouldBeEmpty(string.Join("\n", missing));
    }

    [Fact]
    public async Task The_published_request_examples_are_accepted_as_they_are()
    {
        var operations = await OperationsAsync();
        JsonElement Example(string path, string method) =>
            operations.Single(o => o.Path == path && o.Method == method).Operation
                .GetProperty("requestBody").GetProperty("content").GetProperty("application/json").GetProperty("example");

        var group = Example("/api/protection-groups", "post");
        var created = await _client.Http.PostAsync("/api/protection-groups", new StringContent(group.GetRawText(), Encoding.UTF8, "application/json"), Ct);
        if (created.StatusCode == HttpStatusCode.Conflict) // another run of this test in the same schema took the name
            created = await _client.Http.PostAsJsonAsync("/api/protection-groups", new { name = $"{group.GetProperty("name").GetString()} {Guid.NewGuid():N}" }, Ct);
        created.StatusCode.ShouldBe(HttpStatusCode.Created, await created.Content.ReadAsStringAsync(Ct));
        var groupId = await ApiClient.IdAsync(created);

        foreach (var policy in new[] { "short-term-policy", "online-policy", "throttling", "alert-threshold" })
        {
            var example = Example($"/api/protection-groups/{{groupId}}/{policy}", "put");
            var request = new HttpRequestMessage(HttpMethod.Put, $"/api/protection-groups/{groupId}/{policy}")
            {
                Content = new StringContent(example.GetRawText(), Encoding.UTF8, "application/json"),
                Headers = { IfMatch = { System.Net.Http.Headers.EntityTagHeaderValue.Any } },
            };
            var response = await _client.Http.SendAsync(request, Ct);
            response.IsSuccessStatusCode.ShouldBeTrue($"{policy}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync(Ct)}");
        }

        var agent = await _client.EnrolAsync();
        var source = Example("/api/protection-groups/{groupId}/data-sources", "post").GetRawText()
            .Replace(JsonDocument.Parse(Example("/api/protection-groups/{groupId}/data-sources", "post").GetRawText()).RootElement.GetProperty("agentId").GetString()!, agent.AgentId.ToString());
        var added = await _client.Http.PostAsync($"/api/protection-groups/{groupId}/data-sources", new StringContent(source, Encoding.UTF8, "application/json"), Ct);
        added.StatusCode.ShouldBe(HttpStatusCode.Created, await added.Content.ReadAsStringAsync(Ct));
    }

    [Fact]
    public async Task Each_list_publishes_a_cursor_example_of_its_own_kind()
    {
        // A list refuses another list's cursor with a 400, so an example copied from the document has to be the list's own.
        static IEnumerable<JsonElement> Parameters(JsonElement operation) =>
            operation.TryGetProperty("parameters", out var ps) ? ps.EnumerateArray() : Enumerable.Empty<JsonElement>();
        var lists = (await OperationsAsync())
            .Where(o => o.Method == "get" && Parameters(o.Operation).Any(p => p.GetProperty("name").GetString() == "after"))
            .ToList();
        lists.Select(l => l.Path).ShouldBe(["/api/audit/events", "/api/compliance", "/api/items", "/api/jobs", "/api/recovery-points"], ignoreOrder: true);
        foreach (var (path, _, operation) in lists)
        {
            // The cursor, and what the list needs besides (item search: a path or a name).
            var query = Parameters(operation)
                .Where(p => p.GetProperty("name").GetString() is "after" or "path")
                .Select(p => (Name: p.GetProperty("name").GetString(), Example: p.GetProperty("example")))
                .Select(p => $"{p.Name}={Uri.EscapeDataString(p.Example.ValueKind == JsonValueKind.String ? p.Example.GetString()! : p.Example.GetRawText())}");
            var response = await _client.Http.GetAsync($"{path}?{string.Join('&', query)}", Ct);
            response.StatusCode.ShouldBe(HttpStatusCode.OK, $"{path}: {await response.Content.ReadAsStringAsync(Ct)}");
        }
    }

    private static IEnumerable<JsonElement> ParametersOf(JsonElement operation) =>
        operation.TryGetProperty("parameters", out var ps) ? ps.EnumerateArray() : Enumerable.Empty<JsonElement>();

    /// <summary>Whether <paramref name="example"/> is a value of <paramref name="schema"/>'s type (and format), as a generated client would send it.</summary>
    private static string? Mismatch(JsonElement schema, JsonElement example)
    {
        var type = schema.TryGetProperty("type", out var t) ? (t.ValueKind == JsonValueKind.Array ? t.EnumerateArray().Select(x => x.GetString()).First(x => x != "null") : t.GetString()) : null;
        var format = schema.TryGetProperty("format", out var f) ? f.GetString() : null;
        var text = example.ValueKind == JsonValueKind.String ? example.GetString()! : null;
        return type switch
        {
            "integer" when example.ValueKind != JsonValueKind.Number || !example.TryGetInt64(out _) => $"{example} is not an integer",
            "number" when example.ValueKind != JsonValueKind.Number => $"{example} is not a number",
            "boolean" when example.ValueKind is not (JsonValueKind.True or JsonValueKind.False) => $"{example} is not a boolean",
            "string" when text is null => $"{example} is not a string",
            "string" when format == "date-time" && !DateTimeOffset.TryParse(text, System.Globalization.CultureInfo.InvariantCulture, out _) => $"{example} is not a date-time",
            "string" when format == "uuid" && !Guid.TryParse(text, out _) => $"{example} is not a uuid",
            "string" when text == "example" => "a placeholder",
            _ => null,
        };
    }

    [Fact]
    public async Task Every_parameter_example_is_a_value_of_the_parameters_type()
    {
        var wrong = new List<string>();
        foreach (var (path, method, operation) in await OperationsAsync())
            foreach (var parameter in ParametersOf(operation))
                if (parameter.TryGetProperty("schema", out var schema) && parameter.TryGetProperty("example", out var example) && Mismatch(schema, example) is { } why)
                    wrong.Add($"{method.ToUpperInvariant()} {path} {parameter.GetProperty("name").GetString()}: {why} ({schema})");
        wrong.ShouldBeEmpty(string.Join("\n", wrong));
    }

    /// <summary>
    /// Sends every operation in the document what a client would copy from it (its examples, If-Match *), with the route ids
    /// <paramref name="ids"/> names (others unknown), and collects every status it answers that its document does not list.
    /// </summary>
    private async Task<List<string>> UndocumentedAsync(IReadOnlyDictionary<string, string> ids, params (string Who, HttpClient Client)[] callers)
    {
        var undocumented = new List<string>();
        foreach (var (path, method, operation) in await OperationsAsync())
        {
            var documented = operation.GetProperty("responses").EnumerateObject().Select(r => r.Name).ToHashSet();
            var route = System.Text.RegularExpressions.Regex.Replace(path, @"\{([^}]+)\}", m => ids.GetValueOrDefault(m.Groups[1].Value) ?? Guid.NewGuid().ToString());
            var query = string.Join('&', ParametersOf(operation)
                .Where(p => p.GetProperty("in").GetString() == "query" && p.TryGetProperty("example", out _))
                .Select(p => (Name: p.GetProperty("name").GetString()!, Example: p.GetProperty("example")))
                .Where(p => p.Name is not ("format" or "after")) // each checked by its own tests; a CSV export streams the whole log
                .Select(p => $"{p.Name}={Uri.EscapeDataString(p.Example.ValueKind == JsonValueKind.String ? p.Example.GetString()! : p.Example.GetRawText())}"));
            var body = operation.TryGetProperty("requestBody", out var b) && b.GetProperty("content").TryGetProperty("application/json", out var media)
                && media.TryGetProperty("example", out var example) ? example.GetRawText() : null;
            foreach (var (who, client) in callers)
            {
                using var request = new HttpRequestMessage(new HttpMethod(method.ToUpperInvariant()), query.Length == 0 ? route : $"{route}?{query}");
                if (body is not null) request.Content = new StringContent(body, Encoding.UTF8, "application/json");
                else if (operation.TryGetProperty("requestBody", out _)) request.Content = new ByteArrayContent([1, 2, 3]);
                request.Headers.IfMatch.Add(System.Net.Http.Headers.EntityTagHeaderValue.Any);
                using var response = await client.SendAsync(request, Ct);
                var status = ((int)response.StatusCode).ToString(System.Globalization.CultureInfo.InvariantCulture);
                if (!documented.Contains(status))
                {
                    var text = await response.Content.ReadAsStringAsync(Ct);
                    undocumented.Add($"{method.ToUpperInvariant()} {path} as {who}: {status} not in [{string.Join(", ", documented.Order())}] {text[..Math.Min(200, text.Length)]}");
                }
            }
        }
        return undocumented;
    }

    [Fact]
    public async Task Every_status_an_operation_answers_its_own_examples_with_is_in_its_document()
    {
        var undocumented = await UndocumentedAsync(new Dictionary<string, string>(), ("anonymous", api.CreateAnonymousClient()), ("admin", _client.Http));
        undocumented.ShouldBeEmpty(string.Join("\n", undocumented));
    }

    [Fact]
    public async Task Every_status_an_operation_on_real_resources_answers_is_in_its_document()
    {
        var agent = await _client.EnrolAsync();
        var group = await _client.CreateGroupAsync($"openapi-{Guid.NewGuid():N}");
        var source = await _client.AddFolderAsync(group, agent.AgentId, $"/srv/{Guid.NewGuid():N}");
        var recoveryPoint = await _client.RequestBackupAsync(source);
        (await _client.PollAsync(agent)).StatusCode.ShouldBe(HttpStatusCode.OK); // running: its uploads are checked, not refused
        var ids = new Dictionary<string, string>
        {
            ["agentId"] = agent.AgentId.ToString(), ["groupId"] = group.ToString(), ["dataSourceId"] = source.ToString(),
            ["recoveryPointId"] = recoveryPoint.ToString(), ["jobId"] = recoveryPoint.ToString(), ["packId"] = new string('3', 64),
        };
        var asAgent = api.CreateAnonymousClient();
        asAgent.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue(Backup.Storage.Contracts.AgentHeaders.Scheme, agent.Credential);
        var undocumented = await UndocumentedAsync(ids, ("admin", _client.Http), ("agent", asAgent));
        undocumented.ShouldBeEmpty(string.Join("\n", undocumented));
    }

    /// <summary>Where <paramref name="example"/> departs from <paramref name="schema"/> (references resolved), member by member.</summary>
    private static void Compare(JsonElement components, JsonElement schema, JsonElement example, string at, List<string> wrong)
    {
        while (true)
        {
            if (schema.TryGetProperty("$ref", out var reference))
                schema = components.GetProperty("schemas").GetProperty(reference.GetString()!.Split('/')[^1]);
            else if (schema.TryGetProperty("allOf", out var all) && all.GetArrayLength() == 1) schema = all[0];
            else break;
        }
        if (example.ValueKind == JsonValueKind.Null) return;
        if (schema.TryGetProperty("enum", out var values) && !values.EnumerateArray().Any(v => v.GetRawText() == example.GetRawText()))
        {
            wrong.Add($"{at}: {example} is not one of {values}");
            return;
        }
        var type = schema.TryGetProperty("type", out var t) ? (t.ValueKind == JsonValueKind.Array ? t.EnumerateArray().Select(x => x.GetString()).First(x => x != "null") : t.GetString()) : null;
        if (type == "object" || (type is null && schema.TryGetProperty("properties", out _)))
        {
            if (example.ValueKind != JsonValueKind.Object) { wrong.Add($"{at}: {example} is not an object"); return; }
            if (schema.TryGetProperty("properties", out var properties))
                foreach (var member in example.EnumerateObject())
                    if (properties.TryGetProperty(member.Name, out var property)) Compare(components, property, member.Value, $"{at}.{member.Name}", wrong);
                    else if (!schema.TryGetProperty("additionalProperties", out _)) wrong.Add($"{at}.{member.Name}: not in the schema");
            return;
        }
        if (type == "array")
        {
            if (example.ValueKind != JsonValueKind.Array) { wrong.Add($"{at}: {example} is not an array"); return; }
            if (schema.TryGetProperty("items", out var items))
                foreach (var (item, i) in example.EnumerateArray().Select((e, i) => (e, i))) Compare(components, items, item, $"{at}[{i}]", wrong);
            return;
        }
        if (type is not null && Mismatch(schema, example) is { } why) wrong.Add($"{at}: {why}");
    }

    [Fact]
    public async Task Every_body_and_response_example_follows_its_schema()
    {
        var doc = await _client.GetJsonAsync("/swagger/v1/swagger.json");
        var components = doc.GetProperty("components");
        var wrong = new List<string>();
        foreach (var (path, method, operation) in await OperationsAsync())
        {
            var name = $"{method.ToUpperInvariant()} {path}";
            var contents = new List<(string Where, JsonElement Content)>();
            if (operation.TryGetProperty("requestBody", out var body)) contents.Add(("body", body.GetProperty("content")));
            foreach (var response in operation.GetProperty("responses").EnumerateObject())
                if (response.Value.TryGetProperty("content", out var content)) contents.Add((response.Name, content));
            foreach (var (where, content) in contents)
                foreach (var media in content.EnumerateObject().Where(m => m.Name.Contains("json", StringComparison.Ordinal)))
                    if (media.Value.TryGetProperty("schema", out var schema) && media.Value.TryGetProperty("example", out var example))
                        Compare(components, schema, example, $"{name} {where}", wrong);
        }
        wrong.ShouldBeEmpty(string.Join("\n", wrong));
    }
}
