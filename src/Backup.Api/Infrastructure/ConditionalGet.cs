using System.Security.Cryptography;
using System.Text.Json;
using Microsoft.AspNetCore.Http.Json;
using Microsoft.Extensions.Options;

namespace Backup.Api.Infrastructure;

/// <summary>
/// ETags on read resources and <c>If-None-Match</c> → 304 Not Modified. A resource whose stream version is its ETag (groups,
/// data sources: the same tag If-Match takes) keeps it; any other gets a weak tag of its JSON representation, so a client
/// polling a recovery point, restore or job re-reads it only when something about it changed.
/// </summary>
public static class ConditionalGet
{
    public static RouteHandlerBuilder WithETag(this RouteHandlerBuilder endpoint) => endpoint
        .AddEndpointFilter(async (context, next) =>
        {
            var result = await next(context);
            var http = context.HttpContext;
            var inner = result is INestedHttpResult nested ? nested.Result : result;
            if (inner is not IValueHttpResult { Value: { } value } || inner is IStatusCodeHttpResult { StatusCode: not (null or 200) }) return result;
            var etag = http.Response.Headers.ETag.ToString();
            if (etag.Length == 0)
            {
                var json = http.RequestServices.GetRequiredService<IOptions<JsonOptions>>().Value.SerializerOptions;
                var hash = SHA256.HashData(JsonSerializer.SerializeToUtf8Bytes(value, value.GetType(), json));
                etag = $"W/\"{Convert.ToBase64String(hash, 0, 16).TrimEnd('=').Replace('+', '-').Replace('/', '_')}\"";
                http.Response.Headers.ETag = etag;
            }
            return Matches(http.Request.Headers.IfNoneMatch.ToString(), etag) ? TypedResults.StatusCode(StatusCodes.Status304NotModified) : result;
        })
        .Produces(StatusCodes.Status304NotModified);

    /// <summary>Weak comparison (RFC 9110 §13.1.2): <c>*</c>, or any listed tag equal to ours once <c>W/</c> is set aside.</summary>
    private static bool Matches(string ifNoneMatch, string etag)
    {
        if (ifNoneMatch.Length == 0) return false;
        static string Opaque(string tag) => tag.Trim() is var t && t.StartsWith("W/", StringComparison.Ordinal) ? t[2..] : t.Trim();
        return ifNoneMatch.Split(',').Any(t => t.Trim() == "*" || Opaque(t) == Opaque(etag));
    }
}
