using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using Backup.Storage.Contracts;
using Backup.Storage.Format;

namespace Backup.Api.Infrastructure;

/// <summary>
/// Control characters are refused at the edge, in every string of every body and query, before any handler sees them.
/// U+0000 cannot be stored by PostgreSQL at all (a NUL in a name failed the append as a 500, left a tombstone event behind, and
/// poisoned the pooled connection for the next request). The others (the rest of C0 with tab, CR and LF, DEL, C1) have no place
/// in a name, path or identifier a person types: a newline or an escape sequence in a group or key name forges lines in logs
/// and CSV exports, and a path with one cannot be told apart from another when shown. So every string is refused with any
/// character of Unicode category Cc — except the text an agent reports from the machine it backs up (<see cref="Reported"/>):
/// Linux file names may hold any byte but NUL and '/', a backup must not fail because one does, and those strings are
/// never typed by a person. They are refused only a NUL.
/// </summary>
public static class PlainText
{
    /// <summary>The agent's reports of file names and errors, as they are on its machine (item paths, skipped items, items a restore could not write, failure reasons).</summary>
    private static readonly HashSet<(Type, string)> Reported =
    [
        (typeof(CatalogEntry), nameof(CatalogEntry.Path)),
        (typeof(CatalogChanges), nameof(CatalogChanges.Removed)),
        (typeof(SkippedItem), nameof(SkippedItem.Path)),
        (typeof(SkippedItem), nameof(SkippedItem.Reason)),
        (typeof(FailJobRequest), nameof(FailJobRequest.Reason)),
        (typeof(FailedItem), nameof(FailedItem.Path)),
        (typeof(FailedItem), nameof(FailedItem.Reason)),
        (typeof(ReleaseJobRequest), nameof(ReleaseJobRequest.Reason)),
    ];

    private const string NoControlCharacters = "must not contain control characters (U+0000–U+001F, U+007F–U+009F).";

    /// <summary>Why <paramref name="value"/> is refused, or null when it is plain text.</summary>
    public static string? Problem(string value) => value.Any(char.IsControl) ? NoControlCharacters : null;

    private static string? ReportedProblem(string value) => value.Contains('\0') ? "must not contain U+0000." : null;

    /// <summary>The API's JSON: every string read through <see cref="Problem"/>, the agent's reports through <see cref="ReportedProblem"/>.</summary>
    public static void UsePlainText(this JsonSerializerOptions options)
    {
        options.Converters.Add(new Text(Problem));
        var reported = new Text(ReportedProblem);
        options.TypeInfoResolver = (options.TypeInfoResolver ?? new DefaultJsonTypeInfoResolver()).WithAddedModifier(type =>
        {
            if (type.Kind != JsonTypeInfoKind.Object) return;
            foreach (var property in type.Properties)
            {
                if (property.AttributeProvider is not System.Reflection.MemberInfo member || !Reported.Contains((type.Type, member.Name))) continue;
                if (property.PropertyType == typeof(string)) property.CustomConverter = reported;
                else if (property.PropertyType == typeof(IReadOnlyList<string>)) property.CustomConverter = new TextList(reported);
            }
        });
    }

    /// <summary>A query-string value with a control character is a 400 naming its parameter, like a body field.</summary>
    public static IApplicationBuilder RejectControlCharactersInQuery(this IApplicationBuilder app) => app.Use(async (http, next) =>
    {
        var refused = http.Request.Query
            .Where(q => Problem(q.Key) is not null || q.Value.Any(v => v is not null && Problem(v) is not null))
            .Select(q => Problem(q.Key) is null ? q.Key : Escaped(q.Key))
            .Order(StringComparer.Ordinal)
            .ToList();
        if (refused.Count == 0)
        {
            await next(http);
            return;
        }
        http.Response.StatusCode = StatusCodes.Status400BadRequest;
        var problem = new HttpValidationProblemDetails(refused.ToDictionary(k => k, k => new[] { $"'{k}' {NoControlCharacters}" }))
        {
            Status = StatusCodes.Status400BadRequest, Title = "The request is not valid.",
        };
        await http.RequestServices.GetRequiredService<IProblemDetailsService>().WriteAsync(new ProblemDetailsContext { HttpContext = http, ProblemDetails = problem });
    });

    // A parameter whose own name holds one is named with it escaped: the answer must not carry the character either.
    private static string Escaped(string name) => string.Concat(name.Select(c => char.IsControl(c) ? $"\\u{(int)c:X4}" : c.ToString()));

    private sealed class Text(Func<string, string?> problem) : JsonConverter<string>
    {
        public override string Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
        {
            if (reader.TokenType != JsonTokenType.String) throw new JsonException($"Expected a string, got {reader.TokenType}.");
            return Checked(ref reader);
        }

        public override void Write(Utf8JsonWriter writer, string value, JsonSerializerOptions options) => writer.WriteStringValue(value);

        // Dictionary keys (ProblemDetails' errors, for one) go through the string converter too.
        public override string ReadAsPropertyName(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) => Checked(ref reader);

        public override void WriteAsPropertyName(Utf8JsonWriter writer, string value, JsonSerializerOptions options) => writer.WritePropertyName(value);

        private string Checked(ref Utf8JsonReader reader)
        {
            var value = reader.GetString()!;
            if (problem(value) is { } why) throw new JsonException($"The text {why}");
            return value;
        }
    }

    private sealed class TextList(Text text) : JsonConverter<IReadOnlyList<string>>
    {
        public override IReadOnlyList<string> Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
        {
            if (reader.TokenType != JsonTokenType.StartArray) throw new JsonException($"Expected an array, got {reader.TokenType}.");
            var list = new List<string>();
            while (reader.Read() && reader.TokenType != JsonTokenType.EndArray) list.Add(text.Read(ref reader, typeof(string), options));
            return list;
        }

        public override void Write(Utf8JsonWriter writer, IReadOnlyList<string> value, JsonSerializerOptions options)
        {
            writer.WriteStartArray();
            foreach (var s in value) writer.WriteStringValue(s);
            writer.WriteEndArray();
        }
    }
}
