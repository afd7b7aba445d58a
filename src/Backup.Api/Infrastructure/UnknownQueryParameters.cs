using System.Collections.Concurrent;
using System.Reflection;
using Microsoft.AspNetCore.Mvc;

namespace Backup.Api.Infrastructure;

/// <summary>
/// A query parameter the endpoint does not take is a 400 naming it, not silently ignored: <c>?groupid=</c> misspelt as
/// <c>?grupId=</c> would otherwise return the unfiltered list as if it were the answer. The parameters an endpoint takes are
/// its handler's simple-typed parameters (what minimal APIs bind from the query), matched case-insensitively as binding does.
/// </summary>
public static class UnknownQueryParameters
{
    private static readonly ConcurrentDictionary<Endpoint, HashSet<string>?> Known = new();

    public static IApplicationBuilder RejectUnknownQueryParameters(this IApplicationBuilder app) => app.Use(async (http, next) =>
    {
        if (http.Request.Query.Count > 0 && http.GetEndpoint() is { } endpoint && Known.GetOrAdd(endpoint, Parameters) is { } known)
        {
            var unknown = http.Request.Query.Keys.Where(k => !known.Contains(k)).Order(StringComparer.Ordinal).ToList();
            if (unknown.Count > 0)
            {
                http.Response.StatusCode = StatusCodes.Status400BadRequest;
                var problem = new HttpValidationProblemDetails(unknown.ToDictionary(k => k, k => new[]
                {
                    known.Count == 0
                        ? $"'{k}' is not a parameter of this operation; it takes none in the query."
                        : $"'{k}' is not a parameter of this operation; it takes {string.Join(", ", known.Order(StringComparer.Ordinal))}.",
                }))
                {
                    Status = StatusCodes.Status400BadRequest, Title = "The request names a query parameter this operation does not have.",
                };
                await http.RequestServices.GetRequiredService<IProblemDetailsService>().WriteAsync(new ProblemDetailsContext { HttpContext = http, ProblemDetails = problem });
                return;
            }
        }
        await next(http);
    });

    /// <summary>Null for endpoints that are not minimal-API handlers (health, Swagger): they are left alone.</summary>
    private static HashSet<string>? Parameters(Endpoint endpoint)
    {
        if (endpoint.Metadata.GetMetadata<MethodInfo>() is not { } method) return null;
        var names = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        foreach (var parameter in method.GetParameters())
        {
            if (parameter.GetCustomAttribute<FromQueryAttribute>() is { Name: { } name }) names.Add(name);
            else if (IsSimple(parameter.ParameterType) && parameter.Name is { } plain) names.Add(plain);
        }
        return names;
    }

    private static bool IsSimple(Type type)
    {
        type = Nullable.GetUnderlyingType(type) ?? type;
        return type.IsPrimitive || type.IsEnum || type == typeof(string) || type == typeof(Guid) || type == typeof(DateTimeOffset)
            || type == typeof(DateTime) || type == typeof(decimal) || type == typeof(TimeSpan) || type == typeof(DateOnly);
    }
}
