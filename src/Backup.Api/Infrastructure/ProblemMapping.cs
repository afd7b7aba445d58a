using System.Text.Json;
using System.Text.RegularExpressions;
using Backup.Commands.Common;
using FluentValidation;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Mvc;

namespace Backup.Api.Infrastructure;

/// <summary>Every failure leaves the API as RFC 7807 ProblemDetails with the status that says what went wrong.</summary>
public sealed partial class ProblemMapping(IProblemDetailsService problems, ILogger<ProblemMapping> log) : IExceptionHandler
{
    public async ValueTask<bool> TryHandleAsync(HttpContext http, Exception exception, CancellationToken ct)
    {
        ProblemDetails? problem = exception switch
        {
            ValidationException v => new HttpValidationProblemDetails(
                v.Errors.GroupBy(e => JsonName(e.PropertyName)).ToDictionary(g => g.Key, g => g.Select(e => e.ErrorMessage).Distinct().ToArray()))
            {
                Status = StatusCodes.Status400BadRequest, Title = "The request is not valid.",
            },
            BadHttpRequestException { InnerException: JsonException json } when UnmappedMember(json) is { } field => new HttpValidationProblemDetails(
                new Dictionary<string, string[]> { [field] = [$"'{field}' is not a field of this operation's body."] })
            {
                Status = StatusCodes.Status400BadRequest, Title = "The request body has a field this operation does not have.",
            },
            BadHttpRequestException { InnerException: JsonException json } => new HttpValidationProblemDetails(
                new Dictionary<string, string[]> { [JsonPathName(json.Path)] = [JsonMessage(json)] })
            {
                Status = StatusCodes.Status400BadRequest, Title = "The request body is not valid JSON for this operation.",
            },
            BadHttpRequestException bad when BoundParameter(bad.Message) is { } parameter => new HttpValidationProblemDetails(
                new Dictionary<string, string[]> { [parameter] = [$"'{parameter}' is not a valid value here."] })
            {
                Status = StatusCodes.Status400BadRequest, Title = "The request is not valid.", Detail = bad.Message,
            },
            BadHttpRequestException bad => new ProblemDetails { Status = bad.StatusCode, Title = "Bad request.", Detail = bad.Message },
            NotFoundException e => new ProblemDetails { Status = StatusCodes.Status404NotFound, Title = "Not found.", Detail = e.Message },
            PreconditionFailedException e => new ProblemDetails
            {
                Status = StatusCodes.Status412PreconditionFailed, Title = "The resource changed since you read it.", Detail = e.Message,
                Extensions = { ["currentVersion"] = e.CurrentVersion },
            },
            ConflictException { Code: { } code } e => new ProblemDetails
            {
                Status = StatusCodes.Status409Conflict, Title = "Conflict.", Detail = e.Message, Extensions = { ["code"] = code },
            },
            ConflictException e => new ProblemDetails { Status = StatusCodes.Status409Conflict, Title = "Conflict.", Detail = e.Message },
            UnauthenticatedException e => new ProblemDetails { Status = StatusCodes.Status401Unauthorized, Title = "Unauthenticated.", Detail = e.Message },
            ForbiddenException e => new ProblemDetails { Status = StatusCodes.Status403Forbidden, Title = "Forbidden.", Detail = e.Message },
            UnprocessableException e => new ProblemDetails { Status = StatusCodes.Status422UnprocessableEntity, Title = "Cannot be processed.", Detail = e.Message },
            InvalidDataException e => new ProblemDetails { Status = StatusCodes.Status422UnprocessableEntity, Title = "The data sent is damaged or inconsistent.", Detail = e.Message },
            _ => null,
        };
        if (problem is null)
        {
            log.LogError(exception, "Unhandled error on {Method} {Path}", http.Request.Method, http.Request.Path);
            return false;
        }
        http.Response.StatusCode = problem.Status!.Value;
        return await problems.TryWriteAsync(new ProblemDetailsContext { HttpContext = http, ProblemDetails = problem, Exception = exception });
    }

    /// <summary>
    /// The parameter a malformed query or route value was meant for (ASP.NET says: Failed to bind parameter
    /// "long? after" from "abc".), so a bad cursor or date is a 400 naming it like any other invalid field.
    /// </summary>
    private static string? BoundParameter(string message) =>
        BindFailure().Match(message) is { Success: true } m ? m.Groups["name"].Value : null;

    [GeneratedRegex("""^Failed to bind parameter "(?:[^"]* )?(?<name>[A-Za-z_][A-Za-z0-9_]*)" from """)]
    private static partial Regex BindFailure();

    /// <summary>
    /// The body field no member takes (JsonUnmappedMemberHandling.Disallow), as a path from the body's root ("colour",
    /// "throttling.rate"); the serializer's own message names a .NET type, which is no business of the caller's.
    /// </summary>
    private static string? UnmappedMember(JsonException json)
    {
        if (UnmappedProperty().Match(json.Message) is not { Success: true } m) return null;
        var name = m.Groups["name"].Value;
        var path = JsonPathName(json.Path);
        return path == "body" || path == name || path.EndsWith("." + name, StringComparison.Ordinal) ? (path == "body" ? name : path) : $"{path}.{name}";
    }

    [GeneratedRegex("""^The JSON property '(?<name>.*)' could not be mapped to any \.NET member""", RegexOptions.Singleline)]
    private static partial Regex UnmappedProperty();

    private static string JsonName(string propertyName) =>
        string.IsNullOrEmpty(propertyName) ? "" : JsonNamingPolicy.CamelCase.ConvertName(propertyName);

    private static string JsonPathName(string? path) =>
        string.IsNullOrEmpty(path) || path == "$" ? "body" : path.TrimStart('$', '.');

    private static string JsonMessage(JsonException json) =>
        json.Path is null or "$" ? "The body is not valid JSON." : $"The value at '{json.Path}' is not valid here: {json.Message.Split(" Path:")[0]}";
}
