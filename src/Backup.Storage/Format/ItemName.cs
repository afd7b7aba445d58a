using System.Buffers;
using System.Text;
using System.Text.Unicode;

namespace Backup.Storage.Format;

/// <summary>
/// Linux names are bytes, .NET strings are UTF-16: a name that is not valid UTF-8 is kept in the tree, the item catalog and the
/// API in an escaped form that maps back to its exact bytes (docs/format.md, "Names"). Each byte that is not part of a valid
/// UTF-8 sequence is written as U+FFFD (what any UTF-8 reader shows for it) followed by the byte's value in two upper-case hex
/// digits; the bytes of a U+FFFD the name really holds are escaped the same way, so a U+FFFD in an escaped name always starts an
/// escape. Every valid UTF-8 name without U+FFFD (nearly all) is its own escaped form, so trees written before stay as they were.
/// </summary>
public static class ItemName
{
    public const char Escape = '\uFFFD';

    private static ReadOnlySpan<byte> Replacement => "\uFFFD"u8;

    /// <summary>True when <paramref name="name"/> holds escapes (its bytes are not its UTF-8 encoding).</summary>
    public static bool IsEscaped(string name) => name.Contains(Escape);

    /// <summary>The escaped form of a name or path given as bytes.</summary>
    public static string FromBytes(ReadOnlySpan<byte> bytes)
    {
        if (Utf8.IsValid(bytes) && bytes.IndexOf(Replacement) < 0) return Encoding.UTF8.GetString(bytes);
        var text = new StringBuilder(bytes.Length + 8);
        while (!bytes.IsEmpty)
        {
            var status = Rune.DecodeFromUtf8(bytes, out var rune, out var consumed);
            if (status == OperationStatus.Done && rune.Value != Escape) text.Append(rune.ToString());
            else
                foreach (var b in bytes[..consumed])
                    text.Append(Escape).Append(b.ToString("X2", System.Globalization.CultureInfo.InvariantCulture));
            bytes = bytes[consumed..];
        }
        return text.ToString();
    }

    /// <summary>
    /// The bytes an escaped name stands for, or null when it is not an escaped form <see cref="FromBytes"/> could have written (an
    /// escape of a byte that needs none, lower-case or missing hex digits): such a string names nothing, so it cannot smuggle a
    /// '/' or a NUL past a check made on the string.
    /// </summary>
    public static byte[]? ToBytes(string name)
    {
        if (!IsEscaped(name)) return Encoding.UTF8.GetBytes(name);
        var bytes = new List<byte>(name.Length + 8);
        Span<byte> utf8 = stackalloc byte[4];
        for (var i = 0; i < name.Length; i++)
        {
            if (name[i] == Escape)
            {
                if (i + 2 >= name.Length || !byte.TryParse(name.AsSpan(i + 1, 2), System.Globalization.NumberStyles.AllowHexSpecifier,
                        System.Globalization.CultureInfo.InvariantCulture, out var b) || b < 0x80 || name.AsSpan(i + 1, 2).ContainsAnyInRange('a', 'f'))
                    return null;
                bytes.Add(b);
                i += 2;
                continue;
            }
            if (!Rune.TryGetRuneAt(name, i, out var rune)) return null;
            var length = rune.EncodeToUtf8(utf8);
            for (var k = 0; k < length; k++) bytes.Add(utf8[k]);
            i += rune.Utf16SequenceLength - 1;
        }
        var result = bytes.ToArray();
        // Escapes of bytes that together are valid UTF-8 (other than U+FFFD) would be a second spelling of a plain name.
        return FromBytes(result) == name ? result : null;
    }

    /// <summary>True when <paramref name="name"/> is the escaped form of some name.</summary>
    public static bool IsWellFormed(string name) => !IsEscaped(name) || ToBytes(name) is not null;
}
