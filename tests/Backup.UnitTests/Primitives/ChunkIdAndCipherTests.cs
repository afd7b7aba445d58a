using System.Security.Cryptography;
using Backup.Storage.Crypto;
using FsCheck;
using FsCheck.Xunit;

namespace Backup.UnitTests.Primitives;

public sealed class ChunkIdAndCipherTests
{
    private static readonly byte[] KeyA = TestData.Random(10, 32);
    private static readonly byte[] KeyB = TestData.Random(11, 32);

    [Fact]
    public void Chunk_id_is_keyed_blake3_as_64_lowercase_hex()
    {
        var data = "hello, backup"u8.ToArray();
        var id = new ChunkIdHasher(KeyA).Compute(data);

        using var reference = Blake3.Hasher.NewKeyed(KeyA);
        reference.Update(data);
        id.ToString().ShouldBe(reference.Finalize().ToString());
        id.ToString().ShouldMatch("^[0-9a-f]{64}$");
    }

    [Fact]
    public void The_same_content_under_another_key_has_another_id_so_the_store_cannot_confirm_content()
    {
        var data = TestData.Random(12, 100_000);

        var a = new ChunkIdHasher(KeyA).Compute(data);
        var b = new ChunkIdHasher(KeyB).Compute(data);

        a.ShouldNotBe(b);
        a.ShouldBe(new ChunkIdHasher(KeyA).Compute(data));
        a.ToString().ShouldNotBe(Convert.ToHexStringLower(SHA256.HashData(data)));
    }

    [Property(MaxTest = 50)]
    public void Chunk_id_survives_text_and_bytes(byte[] key32Source)
    {
        var key = new byte[32];
        key32Source.AsSpan(0, Math.Min(32, key32Source.Length)).CopyTo(key);
        var id = new ChunkIdHasher(key).Compute(key32Source);

        ChunkId.Parse(id.ToString()).ShouldBe(id);
        new ChunkId(id.ToArray()).ShouldBe(id);
    }

    [Theory]
    [InlineData("")]
    [InlineData("abc")]
    [InlineData("ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789")]
    [InlineData("g000000000000000000000000000000000000000000000000000000000000000")]
    public void Malformed_chunk_ids_are_refused(string text)
    {
        ChunkId.TryParse(text, out _).ShouldBeFalse();
        Should.Throw<FormatException>(() => ChunkId.Parse(text));
    }

    [Property(MaxTest = 30)]
    public void Sealing_then_opening_gives_back_the_plaintext(byte[] plaintext)
    {
        using var cipher = new BlobCipher(KeyA);
        var sealedBlob = cipher.SealToArray(plaintext);

        sealedBlob.Length.ShouldBe(plaintext.Length + 28);
        cipher.OpenToArray(sealedBlob).ShouldBe(plaintext);
    }

    [Fact]
    public void Every_seal_uses_a_fresh_nonce()
    {
        using var cipher = new BlobCipher(KeyA);
        var data = TestData.Random(13, 1000);

        var first = cipher.SealToArray(data);
        var second = cipher.SealToArray(data);

        first.AsSpan(0, 12).SequenceEqual(second.AsSpan(0, 12)).ShouldBeFalse();
        first.ShouldNotBe(second);
    }

    [Fact]
    public void A_flipped_bit_anywhere_in_a_sealed_blob_is_detected()
    {
        using var cipher = new BlobCipher(KeyA);
        var sealedBlob = cipher.SealToArray(TestData.Random(14, 300));

        foreach (var position in new[] { 0, 11, 12, 150, sealedBlob.Length - 17, sealedBlob.Length - 1 })
        {
            var damaged = (byte[])sealedBlob.Clone();
            damaged[position] ^= 0x04;
            Should.Throw<BlobAuthenticationException>(() => cipher.OpenToArray(damaged)).ShouldBeAssignableTo<CryptographicException>();
        }
    }

    [Fact]
    public void A_truncated_blob_or_another_key_is_detected()
    {
        using var cipher = new BlobCipher(KeyA);
        using var other = new BlobCipher(KeyB);
        var sealedBlob = cipher.SealToArray(TestData.Random(15, 300));

        Should.Throw<BlobAuthenticationException>(() => other.OpenToArray(sealedBlob)).Message.ShouldContain("another key");
        Should.Throw<BlobAuthenticationException>(() => cipher.OpenToArray(sealedBlob.AsSpan(0, sealedBlob.Length - 1).ToArray()));
        Should.Throw<BlobAuthenticationException>(() => cipher.OpenToArray(sealedBlob.AsSpan(0, 20).ToArray())).Message.ShouldContain("truncated");
    }
}
