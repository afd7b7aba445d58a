using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Backup.Api.Infrastructure;
using Backup.IntegrationTests.Infrastructure;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace Backup.IntegrationTests.Access;

/// <summary>
/// Walks every endpoint the API maps (from its EndpointDataSource, so a new endpoint is walked too) as each kind of
/// caller: no credential → 401, a role the endpoint's policy leaves out → 403, a role it lets in → neither.
/// </summary>
public sealed partial class EndpointAccessTests(ApiFactory api) : IClassFixture<ApiFactory>
{
    /// <summary>The role matrix, stated here on its own so that a changed policy shows up as a failing test.</summary>
    private static readonly Dictionary<string, string[]> AllowedByPolicy = new()
    {
        ["Admin"] = ["admin"],
        ["Operate"] = ["admin", "operator"],
        ["Read"] = ["admin", "operator", "auditor"],
        ["Audit"] = ["admin", "auditor"],
        ["Agent"] = ["agent"],
    };

    private static readonly string[] AnonymousEndpoints = ["GET /", "* /health", "POST /api/agents/enrol"];

    private static readonly string[] Callers = ["anonymous", "admin", "operator", "auditor", "agent"];

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private sealed record Walked(string Method, string Pattern, string? Policy, bool NeedsPin)
    {
        public override string ToString() => $"{Method} {Pattern}";
    }

    /// <summary>
    /// Every endpoint, and for one whose destructive variant is chosen by a query value (DELETE /api/data-sources/{id}?data=delete)
    /// that variant too, walked under the stricter policy it declares, with a PIN.
    /// </summary>
    private List<Walked> Endpoints() =>
        api.Services.GetRequiredService<EndpointDataSource>().Endpoints.OfType<RouteEndpoint>()
            .SelectMany(e => (e.Metadata.GetMetadata<HttpMethodMetadata>()?.HttpMethods ?? ["*"]).SelectMany(method =>
            {
                var pattern = "/" + e.RoutePattern.RawText!.TrimStart('/');
                var walked = new Walked(method, pattern,
                    e.Metadata.GetMetadata<IAllowAnonymous>() is null ? e.Metadata.GetOrderedMetadata<IAuthorizeData>().SingleOrDefault()?.Policy : null,
                    e.Metadata.GetMetadata<RequiresSecurityPin>() is not null);
                return e.Metadata.GetMetadata<DestructiveQueryValue>() is { } variant
                    ? [walked, new Walked(method, $"{pattern}?{variant.Parameter}={variant.Value}", variant.Policy, NeedsPin: true)]
                    : new[] { walked };
            }))
            .ToList();

    [Fact]
    public void Every_endpoint_names_one_access_policy_or_is_one_of_the_few_anonymous_ones()
    {
        var endpoints = Endpoints();
        endpoints.Count.ShouldBeGreaterThan(25);
        foreach (var endpoint in endpoints)
        {
            if (endpoint.Policy is null)
                AnonymousEndpoints.ShouldContain(endpoint.ToString(), $"{endpoint} has no access policy: add RequireAuthorization(AccessPolicies.…)");
            else
                AllowedByPolicy.Keys.ShouldContain(endpoint.Policy, $"{endpoint} names a policy the matrix does not know");
        }
        endpoints.Count(e => e.Policy is null).ShouldBe(AnonymousEndpoints.Length);
    }

    /// <summary>The roles as the product promises them, checked against what each endpoint actually names.</summary>
    [Fact]
    public void An_auditor_reads_every_view_and_changes_nothing_and_only_admins_manage_access()
    {
        foreach (var endpoint in Endpoints().Where(e => e.Policy is not null and not "Agent"))
        {
            var allowed = AllowedByPolicy[endpoint.Policy!];
            allowed.ShouldContain("admin", $"{endpoint}: an admin may do everything people may do");
            if (endpoint.Method == "GET") allowed.ShouldContain("auditor", $"{endpoint}: an auditor reads every view");
            else allowed.ShouldNotContain("auditor", $"{endpoint}: an auditor changes nothing");
            if (endpoint.Method != "GET" && endpoint.Pattern.StartsWith("/api/access", StringComparison.Ordinal))
                allowed.ShouldBe(["admin"], $"{endpoint}: only admins issue keys, revoke them and get PINs");
        }
        // Removing a data source with its data is the admin's alone, with a PIN, though retaining it is an operator's job.
        var variants = Endpoints().Where(e => e.Pattern.Contains('?', StringComparison.Ordinal)).ToList();
        variants.Select(e => e.ToString()).ShouldContain("DELETE /api/data-sources/{dataSourceId:guid}?data=delete");
        variants.ShouldAllBe(e => e.Policy == "Admin" && e.NeedsPin);
        // Agents use only their own work endpoints.
        Endpoints().Where(e => e.Policy == "Agent").ShouldAllBe(e => e.Pattern.StartsWith("/api/agents/{agentId", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Every_endpoint_answers_each_caller_as_its_policy_says()
    {
        var agent = await new ApiClient(api.CreateClient()).EnrolAsync("walker");
        var clients = new Dictionary<string, HttpClient>
        {
            ["anonymous"] = api.CreateAnonymousClient(),
            ["admin"] = api.CreateClient(),
            ["operator"] = await api.CreateClientAsync("operator"),
            ["auditor"] = await api.CreateClientAsync("auditor"),
            ["agent"] = api.CreateAnonymousClient(),
        };
        clients["agent"].DefaultRequestHeaders.Authorization = new("Agent", agent.Credential);

        var failures = new List<string>();
        foreach (var endpoint in Endpoints().Where(e => e.Policy is not null))
        {
            var allowed = AllowedByPolicy[endpoint.Policy!];
            foreach (var caller in Callers)
            {
                var url = RouteValue().Replace(endpoint.Pattern, m => m.Groups["name"].Value switch
                {
                    "agentId" => agent.AgentId.ToString(),
                    "packId" => new string('0', 64),
                    _ => Guid.NewGuid().ToString(),
                });
                using var request = new HttpRequestMessage(new HttpMethod(endpoint.Method), url);
                if (endpoint.Method is "POST" or "PUT") request.Content = new StringContent("{}", Encoding.UTF8, "application/json");
                if (endpoint.NeedsPin && caller == "admin") request.Headers.Add("X-Security-Pin", await PinAsync(clients["admin"]));
                var response = await clients[caller].SendAsync(request, Ct);
                var status = response.StatusCode;
                var expected = caller == "anonymous" ? "401" : allowed.Contains(caller) ? "not 401/403" : "403";
                var ok = expected switch
                {
                    "401" => status == HttpStatusCode.Unauthorized,
                    "403" => status == HttpStatusCode.Forbidden,
                    _ => status is not (HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden) && (int)status < 500,
                };
                if (ok && status is HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden)
                    ok = response.Content.Headers.ContentType?.MediaType == "application/problem+json";
                if (!ok)
                    failures.Add($"{endpoint} as {caller}: expected {expected}, got {(int)status} {response.Content.Headers.ContentType?.MediaType} {await response.Content.ReadAsStringAsync(Ct)}");
            }
        }
        failures.ShouldBeEmpty(string.Join('\n', failures));
    }

    [Fact]
    public async Task Health_and_the_swagger_document_need_no_credential()
    {
        var anonymous = api.CreateAnonymousClient();
        (await anonymous.GetAsync("/health", Ct)).StatusCode.ShouldBe(HttpStatusCode.OK);
        var swagger = await anonymous.GetFromJsonAsync<JsonElement>("/swagger/v1/swagger.json", Ct);
        var scheme = swagger.GetProperty("components").GetProperty("securitySchemes").GetProperty("ApiKey");
        scheme.GetProperty("type").GetString().ShouldBe("apiKey");
        scheme.GetProperty("in").GetString().ShouldBe("header");
        scheme.GetProperty("name").GetString().ShouldBe("Authorization");
        swagger.GetProperty("security").GetArrayLength().ShouldBe(1);
        swagger.GetProperty("paths").GetProperty("/api/access/keys/{keyId}").GetProperty("delete").GetProperty("parameters").EnumerateArray()
            .Select(p => p.GetProperty("name").GetString()).ShouldContain("X-Security-Pin");
        var removal = swagger.GetProperty("paths").GetProperty("/api/data-sources/{dataSourceId}").GetProperty("delete").GetProperty("parameters")
            .EnumerateArray().ToDictionary(p => p.GetProperty("name").GetString()!);
        removal.Keys.ShouldBe(["dataSourceId", "data", "X-Security-Pin"], ignoreOrder: true);
        (removal["X-Security-Pin"].TryGetProperty("required", out var required) && required.GetBoolean()).ShouldBeFalse("only data=delete needs it");
    }

    private static async Task<string> PinAsync(HttpClient admin)
    {
        var response = await admin.PostAsync("/api/access/security-pin", null, Ct);
        response.StatusCode.ShouldBe(HttpStatusCode.OK);
        return (await response.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("pin").GetString()!;
    }

    [GeneratedRegex(@"\{(?<name>[A-Za-z]+)(:[^}]*)?\}")]
    private static partial Regex RouteValue();
}
