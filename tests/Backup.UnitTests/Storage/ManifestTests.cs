using System.Text;
using Backup.Storage.Format;

namespace Backup.UnitTests.Storage;

/// <summary>The version 2 tree (encrypted, per recovery point) and manifest (plain, on the server): serialisation and validation.</summary>
public sealed class ManifestTests
{
    private static readonly string ChunkA = new('a', 64);
    private static readonly string ChunkB = new('b', 64);
    private static readonly string PackC = new('c', 64);
    private static readonly string PackD = new('d', 64);

    private static TreeEntry File(string path, long size, params string[] chunks) =>
        new(path, EntryKind.File, size, 0b110_100_100, 638_000_000_000_000_123, Chunks: chunks.Length == 0 ? null : chunks);

    private static Tree Sound(params TreeEntry[] entries) => new(Tree.CurrentVersion, "/srv/data", entries);

    private static Tree Sample() => new(
        Tree.CurrentVersion,
        "/srv/data",
        [
            new TreeEntry("docs", EntryKind.Directory, 0, 0b111_101_101, 638_000_000_000_000_000),
            File("docs/ß-名字.txt", 30, ChunkA, ChunkB),
            File("docs/empty", 0),
            new TreeEntry("docs/link", EntryKind.Symlink, 0, 0b111_111_111, 638_000_000_000_000_999, LinkTarget: "../elsewhere"),
        ],
        [new SkippedItem("pipe", "Not a regular file")]);

    private static Manifest SampleManifest() =>
        new(Manifest.CurrentVersion, Guid.Parse("0195f3a0-0000-7000-8000-0000000000c1"), [ChunkA], [PackC, PackD]);

    [Fact]
    public void Tree_survives_a_json_round_trip()
    {
        var original = Sample();

        var copy = Tree.FromBytes(original.ToBytes());

        copy.FormatVersion.ShouldBe(original.FormatVersion);
        copy.SourcePath.ShouldBe(original.SourcePath);
        copy.Entries.Count.ShouldBe(original.Entries.Count);
        for (var i = 0; i < original.Entries.Count; i++)
        {
            var (a, b) = (original.Entries[i], copy.Entries[i]);
            (b with { Chunks = null }).ShouldBe(a with { Chunks = null });
            (b.Chunks ?? []).ShouldBe(a.Chunks ?? []);
        }
        copy.Skipped.ShouldBe(original.Skipped);
        copy.ToBytes().ShouldBe(original.ToBytes());
    }

    [Fact]
    public void A_tree_of_format_2_written_before_hard_links_and_holes_were_recorded_is_still_read()
    {
        var tree = Tree.FromBytes(Encoding.UTF8.GetBytes(
            $$"""{"formatVersion":2,"sourcePath":"/srv","entries":[{"path":"a.txt","kind":"File","size":3,"mode":420,"mtimeUtcTicks":1,"chunks":["{{ChunkA}}"]}]}"""));

        tree.Validate().ShouldBeEmpty();
        tree.Entries.ShouldHaveSingleItem().LinkGroup.ShouldBeNull();
    }

    [Fact]
    public void Tree_json_is_camel_case_with_named_entry_kinds()
    {
        var json = Encoding.UTF8.GetString(Sample().ToBytes());

        json.ShouldContain("\"formatVersion\":3");
        json.ShouldContain("\"kind\":\"Symlink\"");
        json.ShouldContain("\"linkTarget\":\"../elsewhere\"");
        json.ShouldContain($"\"chunks\":[\"{ChunkA}\",\"{ChunkB}\"]");
    }

    [Fact]
    public void Empty_or_malformed_documents_are_rejected_as_invalid_data()
    {
        Should.Throw<InvalidDataException>(() => Tree.FromBytes("null"u8));
        Should.Throw<InvalidDataException>(() => Tree.FromBytes("{\"entries\":"u8));
        Should.Throw<InvalidDataException>(() => Manifest.FromBytes("null"u8));
        Should.Throw<InvalidDataException>(() => Manifest.FromBytes("[1,2]"u8));
    }

    [Fact]
    public void Sound_tree_has_no_problems()
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
        var problems = Sound(new TreeEntry(path, EntryKind.Directory, 0, 0, 0)).Validate();

        problems.ShouldHaveSingleItem().ShouldContain("must be relative");
    }

    [Fact]
    public void Duplicate_paths_are_a_problem()
    {
        var problems = Sound(new TreeEntry("x", EntryKind.Directory, 0, 0, 0), File("x", 5, ChunkA)).Validate();

        problems.ShouldHaveSingleItem().ShouldContain("appears twice");
    }

    [Fact]
    public void File_with_bytes_but_no_chunks_is_a_problem()
    {
        Sound(File("f", 10)).Validate().ShouldHaveSingleItem().ShouldContain("no chunks");
    }

    [Fact]
    public void A_sparse_file_is_sound_when_its_holes_are_in_order_inside_it_and_its_chunks_hold_the_rest()
    {
        Sound(File("all-hole", 1 << 20) with { Holes = [new FileHole(0, 1 << 20)] }).Validate().ShouldBeEmpty();
        Sound(File("f", 1 << 20, ChunkA) with { Holes = [new FileHole(0, 1000), new FileHole(5000, 2000)] }).Validate().ShouldBeEmpty();
        Sound(File("f", 1 << 20, ChunkA) with { Holes = [new FileHole(5000, 2000), new FileHole(0, 1000)] }).Validate()
            .ShouldHaveSingleItem().ShouldContain("hole at 0");
        Sound(File("f", 4000, ChunkA) with { Holes = [new FileHole(3000, 2000)] }).Validate().ShouldHaveSingleItem().ShouldContain("outside");
        Sound(File("f", 4000) with { Holes = [new FileHole(0, 2000)] }).Validate().ShouldHaveSingleItem().ShouldContain("2000 bytes (its holes aside) but no chunks");
    }

    [Fact]
    public void Empty_file_with_chunks_is_a_problem()
    {
        Sound(File("f", 0, ChunkA)).Validate().ShouldHaveSingleItem().ShouldContain("empty but has chunks");
    }

    [Theory]
    [InlineData("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")]
    [InlineData("aaaa")]
    [InlineData("../../../../../../../../../../../../../../../../../../etc/shadow")]
    [InlineData("gggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggg")]
    public void File_naming_an_invalid_chunk_id_is_a_problem(string chunk)
    {
        Sound(File("f", 5, chunk)).Validate().ShouldHaveSingleItem().ShouldContain("invalid chunk id");
    }

    [Fact]
    public void Negative_size_is_a_problem()
    {
        Sound(File("f", -1)).Validate().ShouldContain(p => p.Contains("negative size"));
    }

    [Fact]
    public void Symlink_without_target_is_a_problem()
    {
        Sound(new TreeEntry("l", EntryKind.Symlink, 0, 0, 0)).Validate().ShouldHaveSingleItem().ShouldContain("no target");
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(4)]
    public void Unknown_tree_format_version_is_a_problem(int version)
    {
        (Sample() with { FormatVersion = version }).Validate().ShouldHaveSingleItem().ShouldContain("format version");
    }

    [Fact]
    public void Manifest_survives_a_json_round_trip_and_names_no_file()
    {
        var original = SampleManifest();

        var copy = Manifest.FromBytes(original.ToBytes());

        copy.FormatVersion.ShouldBe(Manifest.CurrentVersion);
        copy.RecoveryPointId.ShouldBe(original.RecoveryPointId);
        copy.Tree.ShouldBe(original.Tree);
        copy.Packs.ShouldBe(original.Packs);
        copy.ToBytes().ShouldBe(original.ToBytes());
        copy.Sha256().ShouldBe(original.Sha256());
        original.Sha256().ShouldMatch("^[0-9a-f]{64}$");
        Encoding.UTF8.GetString(original.ToBytes()).ShouldContain("\"formatVersion\":2");
    }

    [Fact]
    public void Generated_serializers_write_the_bytes_the_reflection_serializer_wrote()
    {
        // Trees and manifests written before the agent went native (reflection over the types, with the options the tree had)
        // must read the same, and a manifest's SHA-256 must not change with the serializer.
        var treeOptions = new System.Text.Json.JsonSerializerOptions(System.Text.Json.JsonSerializerDefaults.Web)
        {
            DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull,
        };
        var tree = Sample();
        var manifest = SampleManifest();

        tree.ToBytes().ShouldBe(System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(tree, treeOptions));
        manifest.ToBytes().ShouldBe(System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(manifest, Manifest.Json));
        Tree.FromBytes(System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(tree, treeOptions)).ToBytes().ShouldBe(tree.ToBytes());
    }

    [Fact]
    public void Manifest_sha256_changes_when_a_pack_changes()
    {
        var original = SampleManifest();

        (original with { Packs = [PackC] }).Sha256().ShouldNotBe(original.Sha256());
    }

    [Fact]
    public void Pack_ids_are_listed_once_each()
    {
        (SampleManifest() with { Packs = [PackC, PackD, PackC] }).PackIds().ShouldBe([PackC, PackD]);
    }

    [Fact]
    public void Sound_manifest_has_no_problems()
    {
        SampleManifest().Validate().ShouldBeEmpty();
    }

    [Fact]
    public void Manifest_without_tree_or_packs_is_a_problem()
    {
        (SampleManifest() with { Tree = [] }).Validate().ShouldHaveSingleItem().ShouldContain("no tree chunk");
        (SampleManifest() with { Packs = [] }).Validate().ShouldHaveSingleItem().ShouldContain("no pack");
    }

    [Theory]
    [InlineData("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")]
    [InlineData("aaaa")]
    [InlineData("../../../../../../../../../../../../../../../../../../etc/shadow")]
    public void Manifest_naming_an_invalid_tree_chunk_or_pack_is_a_problem(string id)
    {
        (SampleManifest() with { Tree = [id] }).Validate().ShouldHaveSingleItem().ShouldContain("invalid tree chunk");
        (SampleManifest() with { Packs = [PackC, id] }).Validate().ShouldHaveSingleItem().ShouldContain("invalid pack");
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    public void Unknown_manifest_format_version_is_a_problem(int version)
    {
        (SampleManifest() with { FormatVersion = version }).Validate().ShouldHaveSingleItem().ShouldContain("format version");
    }
}
