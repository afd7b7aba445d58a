using System.Buffers.Text;
using System.Text;

namespace Backup.Projections;

/// <summary>
/// The opaque form of every list's keyset cursor: its text (a tag naming the list, then the position) as unpadded base64url,
/// safe in a query string. What a cursor holds is each list's own business; this is only its envelope.
/// </summary>
public static class CursorText
{
    private static readonly UTF8Encoding Strict = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    public static string Encode(string text) => Base64Url.EncodeToString(Encoding.UTF8.GetBytes(text));

    /// <summary>The text of a cursor made by <see cref="Encode"/> and starting with <paramref name="tag"/>, without the tag; false for anything else.</summary>
    public static bool TryDecode(string cursor, string tag, out string position)
    {
        position = "";
        var bytes = new byte[Base64Url.GetMaxDecodedLength(cursor.Length)];
        string text;
        try
        {
            // TryDecodeFromChars is false only for a short destination: a character outside base64url ("!!"), or a last one
            // whose unused bits are set ("-1"), throws, and was a 500 for a typo in a query string.
            if (!Base64Url.TryDecodeFromChars(cursor, bytes, out var written)) return false;
            text = Strict.GetString(bytes, 0, written);
        }
        catch (Exception e) when (e is FormatException or DecoderFallbackException)
        {
            return false;
        }
        if (!text.StartsWith(tag, StringComparison.Ordinal)) return false;
        position = text[tag.Length..];
        return true;
    }
}
