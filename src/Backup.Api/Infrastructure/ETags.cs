using System.Globalization;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Backup.Api.Infrastructure;

/// <summary>
/// Stream versions as strong ETags (<c>"7"</c>). An edit must say which version it was made against:
/// no If-Match is 428 Precondition Required (RFC 6585) rather than a silent last-writer-wins; <c>*</c> means
/// "whatever is current" (RFC 9110); a stale version is 412 Precondition Failed (raised by the command).
/// </summary>
public static class ETags
{
    public static string Of(long version) => $"\"{version.ToString(CultureInfo.InvariantCulture)}\"";

    public static void Set(HttpResponse response, long version) => response.Headers.ETag = Of(version);

    /// <summary>The version If-Match names (null for <c>*</c>), or the problem to answer with instead.</summary>
    public static bool TryReadIfMatch(HttpRequest request, out long? expectedVersion, out IResult? problem) =>
        TryReadIfMatch(request, "GET /api/protection-groups/{id}", out expectedVersion, out problem);

    /// <param name="readFrom">Where the caller gets the ETag from, for the 428's detail.</param>
    public static bool TryReadIfMatch(HttpRequest request, string readFrom, out long? expectedVersion, out IResult? problem)
    {
        expectedVersion = null;
        problem = null;
        var values = request.Headers.IfMatch;
        if (values.Count == 0 || string.IsNullOrWhiteSpace(values.ToString()))
        {
            problem = TypedResults.Problem(
                statusCode: StatusCodes.Status428PreconditionRequired,
                title: "If-Match is required.",
                detail: $"Edits are conditional: send If-Match with the ETag from {readFrom} (or * to overwrite whatever is current).");
            return false;
        }
        var value = values.ToString().Trim();
        if (value == "*") return true;
        if (value.Length > 2 && value[0] == '"' && value[^1] == '"'
            && long.TryParse(value.AsSpan(1, value.Length - 2), NumberStyles.None, CultureInfo.InvariantCulture, out var version) && version >= 1)
        {
            expectedVersion = version;
            return true;
        }
        // Weak tags, lists and anything else are not ETags this API hands out.
        problem = TypedResults.ValidationProblem(
            new Dictionary<string, string[]> { ["If-Match"] = ["If-Match must be an ETag this API returned (e.g. \"3\") or *."] },
            title: "The request is not valid.");
        return false;
    }
}
