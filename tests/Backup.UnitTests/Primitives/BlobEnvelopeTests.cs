using Backup.Storage.Blobs;
using Backup.Storage.Crypto;
using FsCheck.Xunit;

namespace Backup.UnitTests.Primitives;

public sealed class BlobEnvelopeTests : IDisposable
{
    // Keys without a key file: the envelope does not care how they were unwrapped, and this keeps Argon2id out.
    private readonly MasterKeys _keys = MasterKeys.Generate();
    private readonly BlobEnvelope _envelope;

    public BlobEnvelopeTests() => _envelope = new BlobEnvelope(_keys);

    public void Dispose()
    {
        _envelope.Dispose();
        _keys.Dispose();
    }

    [Property(MaxTest = 40)]
    public void Any_chunk_seals_and_opens_to_the_same_bytes(byte[] chunk, bool repeat)
    {
        var input = repeat ? Enumerable.Repeat(chunk, 40).SelectMany(b => b).ToArray() : chunk;
        var id = _envelope.ComputeId(input);

        var blob = _envelope.Seal(input);

        blob.Length.ShouldBeLessThanOrEqualTo(BlobEnvelope.MaxSealedLength(input.Length));
        _envelope.Open(blob, id, input.Length).ShouldBe(input);
    }

    [Fact]
    public void Compressible_chunks_are_stored_compressed_and_random_ones_raw()
    {
        var text = TestData.Text(1, 1 << 20);
        var random = TestData.Random(2, 1 << 20);
        var buffer = new byte[BlobEnvelope.MaxSealedLength(1 << 20)];

        var sealedText = _envelope.Seal(text, buffer);
        sealedText.Encoding.ShouldBe(BlobEncoding.Zstd);
        sealedText.Length.ShouldBeLessThan(text.Length / 3);

        var sealedRandom = _envelope.Seal(random, buffer);
        sealedRandom.Encoding.ShouldBe(BlobEncoding.Raw);
        sealedRandom.Length.ShouldBe(random.Length + BlobEnvelope.MaxOverhead);
        _envelope.Open(buffer.AsSpan(0, sealedRandom.Length), _envelope.ComputeId(random), new byte[1 << 20]).ShouldBe(random.Length);
    }

    [Theory]
    [InlineData(true, 0)]
    [InlineData(true, 12)]     // the encoding byte
    [InlineData(true, 500)]
    [InlineData(false, 500)]
    [InlineData(false, -1)]    // the tag
    public void A_flipped_byte_names_the_damaged_chunk(bool compressible, int position)
    {
        var chunk = compressible ? TestData.Text(3, 100_000) : TestData.Random(3, 100_000);
        var id = _envelope.ComputeId(chunk);
        var blob = _envelope.Seal(chunk);
        blob[position < 0 ? blob.Length + position : position] ^= 0x01;

        var error = Should.Throw<BlobAuthenticationException>(() => _envelope.Open(blob, id, chunk.Length));
        error.Message.ShouldContain(id.ToString());
    }

    [Fact]
    public void A_blob_sealed_under_another_repository_key_is_refused()
    {
        var chunk = TestData.Text(4, 50_000);
        using var otherKeys = MasterKeys.Generate();
        using var other = new BlobEnvelope(otherKeys);
        var blob = other.Seal(chunk);

        Should.Throw<BlobAuthenticationException>(() => _envelope.Open(blob, _envelope.ComputeId(chunk), chunk.Length));
    }

    [Fact]
    public void An_authentic_blob_stored_under_the_wrong_id_is_refused_with_both_ids()
    {
        var chunkA = TestData.Text(5, 50_000);
        var chunkB = TestData.Text(6, 50_000);
        var idA = _envelope.ComputeId(chunkA);
        var idB = _envelope.ComputeId(chunkB);

        var error = Should.Throw<ChunkMismatchException>(() => _envelope.Open(_envelope.Seal(chunkB), idA, 50_000));

        error.Expected.ShouldBe(idA);
        error.Actual.ShouldBe(idB);
        error.Message.ShouldContain(idA.ToString());
    }

    [Fact]
    public void A_chunk_larger_than_the_caller_allows_is_refused()
    {
        var text = TestData.Text(7, 100_000);
        var random = TestData.Random(7, 100_000);

        Should.Throw<InvalidDataException>(() => _envelope.Open(_envelope.Seal(text), _envelope.ComputeId(text), 1000));
        Should.Throw<InvalidDataException>(() => _envelope.Open(_envelope.Seal(random), _envelope.ComputeId(random), 1000));
    }

    [Fact]
    public void A_truncated_blob_is_refused()
    {
        var chunk = TestData.Random(8, 1000);
        var blob = _envelope.Seal(chunk);

        Should.Throw<BlobAuthenticationException>(() => _envelope.Open(blob.AsSpan(0, 20), _envelope.ComputeId(chunk), new byte[1000]));
        Should.Throw<BlobAuthenticationException>(() => _envelope.Open(blob.AsSpan(0, blob.Length - 1), _envelope.ComputeId(chunk), new byte[1000]));
    }
}
