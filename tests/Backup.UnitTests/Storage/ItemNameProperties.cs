using System.Text;
using Backup.Storage.Format;
using FsCheck.Xunit;

namespace Backup.UnitTests.Storage;

/// <summary>Names are bytes: the escaped form of any name maps back to exactly those bytes, and plain UTF-8 names are their own.</summary>
public sealed class ItemNameProperties
{
    [Property(MaxTest = 2000)]
    public void Any_bytes_round_trip_through_the_escaped_form(byte[] name)
    {
        // Mostly high bytes, so invalid sequences, stray continuation bytes and the bytes of U+FFFD itself come up often.
        var bytes = name.Select((b, i) => i % 3 == 0 ? b : (byte)(b | 0x80)).ToArray();

        var escaped = ItemName.FromBytes(bytes);

        ItemName.ToBytes(escaped).ShouldBe(bytes);
        ItemName.IsWellFormed(escaped).ShouldBeTrue();
    }

    [Property(MaxTest = 500)]
    public void A_valid_UTF8_name_without_U_FFFD_is_its_own_escaped_form(string text)
    {
        var name = new string([.. (text ?? "").Where(c => !char.IsSurrogate(c) && c != ItemName.Escape)]);

        ItemName.FromBytes(Encoding.UTF8.GetBytes(name)).ShouldBe(name);
        ItemName.IsEscaped(name).ShouldBeFalse();
    }

    [Fact]
    public void Bytes_that_are_not_UTF8_are_escaped_as_U_FFFD_and_two_hex_digits()
    {
        ItemName.FromBytes([.. "caf"u8, 0xE9, .. ".txt"u8]).ShouldBe("caf\uFFFDE9.txt");
        ItemName.FromBytes([.. "dir-"u8, 0xFF, 0xFE]).ShouldBe("dir-\uFFFDFF\uFFFDFE");
        // A U+FFFD the name really holds is escaped too, so a U+FFFD always starts an escape.
        ItemName.FromBytes("a\uFFFDb"u8).ShouldBe("a\uFFFDEF\uFFFDBF\uFFFDBDb");
    }

    [Theory]
    [InlineData("x\uFFFD2F..")] // a '/' that would slip past the checks made on the string
    [InlineData("x\uFFFD00")] // a NUL
    [InlineData("caf\uFFFDe9")] // lower case: a second spelling
    [InlineData("caf\uFFFDE")] // cut short
    [InlineData("\uFFFDC3\uFFFDA9")] // "é", valid UTF-8: a second spelling of a plain name
    public void An_escape_that_stands_for_no_byte_a_name_could_need_escaped_is_not_well_formed(string name)
    {
        ItemName.ToBytes(name).ShouldBeNull();
        ItemName.IsWellFormed(name).ShouldBeFalse();
    }
}
