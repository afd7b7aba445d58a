using System.Text;
using Backup.Storage.Format;

namespace Backup.UnitTests.Storage;

public sealed class ManifestTests
{
    private static readonly string PackA = new('a', 64);
    private static readonly string PackB = new('b', 64);
    private static readonly string FileSha = new('c', 64);

    private static ManifestEntry File(string path, long size, params PackSegment[] segments) =>
        new(path, EntryKind.File, size, 0b110_100_100, 638_000_000_000_000_123, FileSha, Segments: segments);

    private static Manifest Sound(params ManifestEntry[] entries) =>
        new(Manifest.CurrentVersion, Guid.Parse("0195f3a0-0000-7000-8000-0000000000c1"), "/srv/data", entries);

    private static Manifest Sample() => new(
        Manifest.CurrentVersion,
        Guid.Parse("0195f3a0-0000-7000-8000-0000000000c1"),
        "/srv/data",
        [
            new ManifestEntry("docs", EntryKind.Directory, 0, 0b111_101_101, 638_000_000_000_000_000),
            File("docs/ß-名字.txt", 30, new PackSegment(PackA, 0, 10), new PackSegment(PackB, 0, 20)),
            File("docs/empty", 0),
            new ManifestEntry("docs/link", EntryKind.Symlink, 0, 0b111_111_111, 638_000_000_000_000_999, LinkTarget: "../elsewhere"),
        ],
        [new SkippedItem("pipe", "Not a regular file")]);

    [Fact]
    public void Manifest_survives_a_json_round_trip()
    {
        var original = Sample();

        var copy = Manifest.FromBytes(original.ToBytes());

        copy.FormatVersion.ShouldBe(original.FormatVersion);
        copy.RecoveryPointId.ShouldBe(original.RecoveryPointId);
        copy.SourcePath.ShouldBe(original.SourcePath);
        copy.Entries.Count.ShouldBe(original.Entries.Count);
        for (var i = 0; i < original.Entries.Count; i++)
        {
            var (a, b) = (original.Entries[i], copy.Entries[i]);
            (b with { Segments = null }).ShouldBe(a with { Segments = null });
            (b.Segments ?? []).ShouldBe(a.Segments ?? []);
        }
        copy.Skipped.ShouldBe(original.Skipped);
        copy.ToBytes().ShouldBe(original.ToBytes());
        copy.Sha256().ShouldBe(original.Sha256());
    }

    [Fact]
    public void Manifest_json_is_camel_case_with_named_entry_kinds()
    {
        var json = Encoding.UTF8.GetString(Sample().ToBytes());

        json.ShouldContain("\"formatVersion\":1");
        json.ShouldContain("\"kind\":\"Symlink\"");
        json.ShouldContain("\"linkTarget\":\"../elsewhere\"");
    }

    [Fact]
    public void Empty_manifest_document_is_rejected()
    {
        Should.Throw<InvalidDataException>(() => Manifest.FromBytes("null"u8));
    }

    [Fact]
    public void Sha256_changes_when_any_entry_changes()
    {
        var original = Sample();
        var changed = original with { Entries = [.. original.Entries.Take(3), original.Entries[3] with { LinkTarget = "../other" }] };

        changed.Sha256().ShouldNotBe(original.Sha256());
        original.Sha256().ShouldMatch("^[0-9a-f]{64}$");
    }

    [Fact]
    public void Pack_ids_are_listed_once_each()
    {
        var manifest = Sound(
            File("a", 15, new PackSegment(PackA, 0, 5), new PackSegment(PackB, 0, 10)),
            File("b", 5, new PackSegment(PackB, 10, 5)));

        manifest.PackIds().ShouldBe([PackA, PackB]);
    }

    [Fact]
    public void Sound_manifest_has_no_problems()
    {
        Sample().Validate().ShouldBeEmpty();
    }

    [Theory]
    [InlineData("..")]
    [InlineData("../etc/passwd")]
    [InlineData("docs/../../etc")]
    [InlineData("docs/..")]
    [InlineData("/etc/passwd")]
    [InlineData("docs//x")]
    [InlineData("./x")]
    [InlineData("docs/")]
    [InlineData("")]
    public void Paths_that_could_escape_or_are_not_plain_relative_paths_are_problems(string path)
    {
        var problems = Sound(new ManifestEntry(path, EntryKind.Directory, 0, 0, 0)).Validate();

        problems.ShouldHaveSingleItem().ShouldContain("must be relative");
    }

    [Fact]
    public void Duplicate_paths_are_a_problem()
    {
        var problems = Sound(
            new ManifestEntry("x", EntryKind.Directory, 0, 0, 0),
            File("x", 5, new PackSegment(PackA, 0, 5))).Validate();

        problems.ShouldHaveSingleItem().ShouldContain("appears twice");
    }

    [Theory]
    [InlineData(10, 9)]
    [InlineData(10, 11)]
    [InlineData(0, 1)]
    public void Segments_that_do_not_add_up_to_the_size_are_a_problem(long size, long segmentLength)
    {
        var problems = Sound(File("f", size, new PackSegment(PackA, 0, segmentLength))).Validate();

        problems.ShouldHaveSingleItem().ShouldContain("do not add up");
    }

    [Fact]
    public void File_with_bytes_but_no_segments_is_a_problem()
    {
        Sound(File("f", 10)).Validate().ShouldHaveSingleItem().ShouldContain("do not add up");
    }

    [Theory]
    [InlineData("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")]
    [InlineData("aaaa")]
    [InlineData("../../../../../../../../../../../../../../../../../../etc/shadow")]
    [InlineData("gggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggg")]
    public void Segment_naming_an_invalid_pack_is_a_problem(string packId)
    {
        var problems = Sound(File("f", 5, new PackSegment(packId, 0, 5))).Validate();

        problems.ShouldHaveSingleItem().ShouldContain("invalid segment");
    }

    [Fact]
    public void Negative_offsets_and_empty_segments_are_problems()
    {
        Sound(File("f", 5, new PackSegment(PackA, -1, 5))).Validate().ShouldHaveSingleItem().ShouldContain("invalid segment");
        Sound(File("f", 5, new PackSegment(PackA, 0, 5), new PackSegment(PackB, 0, 0))).Validate().ShouldHaveSingleItem().ShouldContain("invalid segment");
    }

    [Fact]
    public void File_without_a_valid_sha256_is_a_problem()
    {
        Sound(File("f", 0) with { Sha256 = null }).Validate().ShouldHaveSingleItem().ShouldContain("SHA-256");
        Sound(File("f", 0) with { Sha256 = "abc" }).Validate().ShouldHaveSingleItem().ShouldContain("SHA-256");
    }

    [Fact]
    public void Negative_size_is_a_problem()
    {
        Sound(File("f", -1)).Validate().ShouldContain(p => p.Contains("negative size"));
    }

    [Fact]
    public void Symlink_without_target_is_a_problem()
    {
        Sound(new ManifestEntry("l", EntryKind.Symlink, 0, 0, 0)).Validate().ShouldHaveSingleItem().ShouldContain("no target");
    }

    [Theory]
    [InlineData(0)]
    [InlineData(2)]
    public void Unknown_format_version_is_a_problem(int version)
    {
        (Sample() with { FormatVersion = version }).Validate().ShouldHaveSingleItem().ShouldContain("format version");
    }
}
