using System.Net;
using System.Text.Json;

namespace Backup.IntegrationTests.Infrastructure;

/// <summary>What every rejected request must look like: the status, a ProblemDetails body, and no event appended.</summary>
public static class Rejections
{
    public static async Task<JsonElement> ShouldBeRejectedAsync(this ApiFactory api, Func<Task<HttpResponseMessage>> call, HttpStatusCode status)
    {
        var ct = TestContext.Current.CancellationToken;
        var before = await api.EventCountAsync();
        var response = await call();
        var body = await response.Content.ReadAsStringAsync(ct);
        response.StatusCode.ShouldBe(status, body);
        response.Content.Headers.ContentType?.MediaType.ShouldBe("application/problem+json", body);
        (await api.EventCountAsync()).ShouldBe(before, "a rejected request must not append events");
        return JsonDocument.Parse(body).RootElement;
    }

    public static void ShouldName(JsonElement problem, string field) =>
        problem.GetProperty("errors").EnumerateObject().Select(p => p.Name).ShouldContain(field, problem.ToString());
}
