using System.Security.Cryptography;
using Backup.Agent.Memory;
using Backup.Agent.Restoring;
using Backup.Storage.Crypto;

namespace Backup.UnitTests.Engine;

/// <summary>
/// A restore takes each pack as it downloads: whatever sizes the network hands it, the blobs it needs must come out whole and
/// exact, in order, and a pack that is short, mis-indexed or not the pack its id names must fail the restore.
/// </summary>
public sealed class PackReceiverTests
{
    private static readonly byte[] Pack = RandomNumberGenerator.GetBytes(200_000);
    private static readonly string PackId = Convert.ToHexStringLower(SHA256.HashData(Pack));

    // Three blobs with gaps between them and one at the very end.
    private static readonly (ChunkId Id, long Offset, int Length)[] Blobs =
        [(Id(1), 10, 5_000), (Id(2), 60_000, 70_000), (Id(3), 199_000, 1_000)];

    private static ChunkId Id(byte n) => new(Enumerable.Repeat(n, ChunkId.Size).ToArray());

    private static List<(int Index, byte[] Bytes)> Receive(byte[] pack, string packId, (ChunkId, long, int)[] blobs, int seed, bool finish = true)
    {
        using var pool = new NativeBufferPool(1 << 20);
        var received = new List<(int, byte[])>();
        using var receiver = new PackReceiver(packId, blobs, pool, (i, blob) => received.Add((i, blob.ToArray())));
        var random = new Random(seed);
        for (var at = 0; at < pack.Length;)
        {
            var size = Math.Min(pack.Length - at, random.Next(1, 40_000));
            receiver.Write(pack.AsSpan(at, size));
            at += size;
        }
        if (finish) receiver.Finish();
        return received;
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void Blobs_come_out_whole_and_in_order_however_the_download_is_split(int seed)
    {
        var received = Receive(Pack, PackId, Blobs, seed);
        received.Select(r => r.Index).ShouldBe([0, 1, 2]);
        for (var i = 0; i < Blobs.Length; i++)
            received[i].Bytes.ShouldBe(Pack.AsSpan((int)Blobs[i].Offset, Blobs[i].Length).ToArray());
    }

    [Fact]
    public void A_pack_that_does_not_hash_to_its_id_fails_at_the_end_naming_it()
    {
        var damaged = (byte[])Pack.Clone();
        damaged[^5] ^= 1; // past the last blob: only the hash can tell
        var e = Should.Throw<InvalidDataException>(() => Receive(damaged, PackId, Blobs, 1));
        e.Message.ShouldContain($"Pack {PackId} is corrupt");
    }

    [Fact]
    public void A_pack_shorter_than_the_index_says_fails_naming_the_chunk_past_its_end()
    {
        var e = Should.Throw<InvalidDataException>(() => Receive(Pack[..150_000], PackId, Blobs, 1));
        e.Message.ShouldContain("shorter than the index says");
        e.Message.ShouldContain(Blobs[2].Id.ToString());
    }

    [Fact]
    public void An_index_with_overlapping_blobs_is_refused()
    {
        (ChunkId, long, int)[] overlapping = [(Id(1), 100, 5_000), (Id(2), 4_000, 100)];
        var e = Should.Throw<InvalidDataException>(() => Receive(Pack, PackId, overlapping, 1, finish: false));
        e.Message.ShouldContain(Id(2).ToString());
    }
}
