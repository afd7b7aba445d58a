using System.Text;
using Backup.Commands.Common;
using Backup.Commands.Uniqueness;
using FluentValidation;
using Marten;
using Mediator;

namespace Backup.Commands.Access;

public sealed record ApiKeyIssuedResult(Guid KeyId, string Name, string Role, string Key);

/// <summary>An admin gives a person a key with one role; the key is shown once and only its hash is stored.</summary>
public sealed record IssueApiKey(string Name, string Role) : ICommand<ApiKeyIssuedResult>;

public sealed class IssueApiKeyValidator : AbstractValidator<IssueApiKey>
{
    public IssueApiKeyValidator()
    {
        RuleFor(x => x.Name).NotEmpty().Must(n => n.Trim().Length > 0).WithMessage("'Name' must not be blank.").MaximumLength(100)
            .Must(KeyNames.IsPlain).WithMessage("'Name' may hold only letters, digits and . - _ @ (no spaces, no invisible or control characters).");
        RuleFor(x => x.Role).Must(r => Roles.ForPeople.Contains(r))
            .WithMessage($"'Role' must be one of {string.Join(", ", Roles.ForPeople)}.");
    }
}

public sealed class IssueApiKeyHandler(IDocumentSession session, TimeProvider clock) : ICommandHandler<IssueApiKey, ApiKeyIssuedResult>
{
    public async ValueTask<ApiKeyIssuedResult> Handle(IssueApiKey command, CancellationToken ct)
    {
        var name = KeyNames.Normal(command.Name);
        var key = ApiKeyName.KeyOf(name);
        if (key == ApiKeyName.KeyOf(ApiKey.BootstrapName) || await session.Query<ApiKeyName>().AnyAsync(n => n.NameKey == key, ct))
            throw new ConflictException($"An API key named '{name}' already exists.");
        // People are few; their names are compared in memory. Two confusable names issued at the same instant can both pass
        // (the unique index holds the exact name only); issuing keys is an admin's rare act, so that race is accepted.
        var skeleton = KeyNames.Skeleton(name);
        var taken = await session.Query<ApiKeyName>().Select(n => n.NameKey).ToListAsync(ct);
        if (taken.Append(ApiKey.BootstrapName).FirstOrDefault(t => KeyNames.Skeleton(t) == skeleton) is { } lookalike)
            throw new ConflictException($"The name '{name}' reads like the existing key name '{lookalike.ToLowerInvariant()}'; choose one that cannot be mistaken for it.");
        var keyId = Guid.CreateVersion7();
        var secret = Secrets.NewSecret();
        var issued = ApiKey.Issue(keyId, name, command.Role, Secrets.Hash(secret), clock.GetUtcNow());
        session.Events.StartStream<ApiKey>(keyId, issued);
        try
        {
            await session.SaveChangesAsync(ct);
        }
        catch (Exception e) when (e.IsUniqueViolation())
        {
            // Lost a race with another request for the same name (unique index on ApiKeyName.NameKey).
            throw new ConflictException($"An API key named '{name}' already exists.");
        }
        return new ApiKeyIssuedResult(keyId, issued.Name, issued.Role, Secrets.Compose(keyId, secret));
    }
}

/// <summary>
/// The audit trail names people by their key's name ("user:&lt;name&gt;"), so a name must read as one person only: letters,
/// digits and <c>. - _ @</c> (an e-mail address fits), composed (NFC), and not confusable with a name already taken. A
/// zero-width space, a newline or a right-to-left override once let "bootstrap-admin\u200b" pass for the bootstrap admin.
/// The processes run with invariant globalization, which has no Unicode normalization tables (string.Normalize leaves
/// non-ASCII text as it is), so NFC is had by refusing combining marks: they are not letters, and a name typed on any
/// keyboard comes composed; a decomposed "e\u0301" would otherwise be a second "é".
/// </summary>
public static class KeyNames
{
    public static string Normal(string name) => name.Trim();

    public static bool IsPlain(string name)
    {
        var normal = Normal(name);
        return normal.Length > 0 && normal.All(c => char.IsLetterOrDigit(c) || c is '.' or '-' or '_' or '@');
    }

    /// <summary>
    /// What a name looks like, roughly as Unicode's confusable skeleton (UTS #39) takes it: lower case, Latin letters without
    /// their accents, the Cyrillic and Greek letters drawn like Latin ones read as those, and 0/1/rn as o/l/m. Not the full
    /// confusables table (.NET has none), but the lookalikes a person would use to pass for another.
    /// </summary>
    public static string Skeleton(string name)
    {
        var folded = new StringBuilder(name.Length);
        foreach (var c in name)
        {
            var lower = char.ToLowerInvariant(c);
            folded.Append(Lookalikes.TryGetValue(lower, out var latin) ? latin : lower);
        }
        return folded.Replace("rn", "m").ToString();
    }

    // The accented letters of Latin-1 Supplement and Latin Extended-A/B with the letter each decomposes to (made with
    // Python's unicodedata, NFKD without the combining marks).
    private const string Accented =
        "ÀÁÂÃÄÅÇÈÉÊËÌÍÎÏÑÒÓÔÕÖÙÚÛÜÝàáâãäåçèéêëìíîïñòóôõöùúûüýÿĀāĂăĄąĆćĈĉĊċČčĎďĒēĔĕĖėĘęĚěĜĝĞğĠġĢģĤĥĨĩĪīĬĭĮįİĴĵĶķĹĺĻļĽľŃńŅņŇňŌōŎŏŐőŔŕŖŗŘřŚśŜŝŞşŠšŢţŤťŨũŪūŬŭŮůŰűŲųŴŵŶŷŸŹźŻżŽžſƠơƯưǍǎǏǐǑǒǓǔǕǖǗǘǙǚǛǜǞǟǠǡǦǧǨǩǪǫǬǭǰǴǵǸǹǺǻȀȁȂȃȄȅȆȇȈȉȊȋȌȍȎȏȐȑȒȓȔȕȖȗȘșȚțȞȟȦȧȨȩȪȫȬȭȮȯȰȱȲȳ";
    private const string Unaccented =
        "aaaaaaceeeeiiiinooooouuuuyaaaaaaceeeeiiiinooooouuuuyyaaaaaaccccccccddeeeeeeeeeegggggggghhiiiiiiiiijjkkllllllnnnnnnoooooorrrrrrssssssssttttuuuuuuuuuuuuwwyyyzzzzzzsoouuaaiioouuuuuuuuuuaaaaggkkoooojggnnaaaaaaeeeeiiiioooorrrruuuusstthhaaeeooooooooyy";

    private static readonly Dictionary<char, char> Lookalikes = Build();

    private static Dictionary<char, char> Build()
    {
        var map = new Dictionary<char, char>();
        foreach (var (from, to) in new[]
        {
            (Accented.ToLowerInvariant(), Unaccented),
            // Cyrillic
            ("авекмнорстухѕіјһԁԛԝӏёї", "abekmhopctyxsijhdqwlei"),
            // Greek
            ("αβεηικνορτυχζ", "abenikvoptuxz"),
            // Digits and Latin letters drawn alike
            ("01ı", "oli"),
        })
        {
            for (var i = 0; i < from.Length; i++) map[from[i]] = to[i];
        }
        return map;
    }
}
