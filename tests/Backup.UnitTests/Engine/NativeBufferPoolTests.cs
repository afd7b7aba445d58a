using Backup.Agent.Memory;

namespace Backup.UnitTests.Engine;

/// <summary>The agent's chunk buffers: reused smallest-fit, kept up to a byte budget, freed beyond it and on dispose.</summary>
public sealed class NativeBufferPoolTests
{
    [Fact]
    public void A_buffer_holds_what_is_written_and_has_at_least_the_length_asked_for()
    {
        using var pool = new NativeBufferPool(4 << 20);
        var small = pool.Rent(100);
        var large = pool.Rent(1_000_001);
        small.Capacity.ShouldBe(64 << 10);
        large.Capacity.ShouldBe(1 << 20);
        large.Span(1_000_001).Fill(7);
        large.Span(1_000_001)[1_000_000].ShouldBe((byte)7);
        Should.Throw<ArgumentOutOfRangeException>(() => small.Span(small.Capacity + 1));
        pool.Return(small);
        pool.Return(large);
    }

    [Fact]
    public void A_returned_buffer_is_reused_by_the_smallest_fit()
    {
        using var pool = new NativeBufferPool(4 << 20);
        var small = pool.Rent(10_000);
        var large = pool.Rent(900_000);
        pool.Return(large);
        pool.Return(small);
        pool.KeptBytes.ShouldBe((64 << 10) + (1 << 20));

        pool.Rent(70_000).ShouldBeSameAs(large); // the 64 KiB one is too small
        pool.Rent(5).ShouldBeSameAs(small);
        pool.KeptBytes.ShouldBe(0);
        pool.Return(large);
        pool.Return(small);
    }

    [Fact]
    public void Beyond_the_budget_the_largest_free_buffers_go_first()
    {
        using var pool = new NativeBufferPool(1 << 20);
        var a = pool.Rent(300_000); // 512 KiB
        var b = pool.Rent(300_000);
        var c = pool.Rent(2_000_000); // 2 MiB
        pool.Return(a);
        pool.Return(b);
        pool.Return(c);

        pool.KeptBytes.ShouldBe(1 << 20); // the two 512 KiB buffers; the 2 MiB one was freed
        pool.Rent(600_000).Capacity.ShouldBe(1 << 20); // nothing kept fits: a new buffer
        pool.KeptBytes.ShouldBe(1 << 20);
    }

    [Fact]
    public void After_dispose_nothing_is_kept_and_nothing_more_is_handed_out()
    {
        var pool = new NativeBufferPool(4 << 20);
        var kept = pool.Rent(1000);
        var late = pool.Rent(1000);
        pool.Return(kept);
        pool.Dispose();

        pool.KeptBytes.ShouldBe(0);
        pool.Return(late); // freed at once
        Should.Throw<ObjectDisposedException>(() => pool.Rent(1));
    }
}
