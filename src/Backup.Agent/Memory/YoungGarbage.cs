namespace Backup.Agent.Memory;

/// <summary>
/// A long job makes short-lived objects per item (names, file infos, state machines, parsed JSON) and the GC's default
/// young-generation budget grows with the CPU cache (80 MB on a server part, more on a VM that reports a 300 MB L3): left
/// alone, a whole run's garbage can stay resident until some large allocation forces a full collection. <see cref="Collect"/>,
/// called as work goes on, runs a young collection once every 4 MB allocated (by any thread), about a millisecond each (what
/// survives is what the job keeps: the tree being built or read, the restore's plan).
/// </summary>
public static class YoungGarbage
{
    private const long Bytes = 4 << 20;
    private static long _collectedAt;

    public static void Collect()
    {
        var allocated = GC.GetTotalAllocatedBytes();
        var last = Interlocked.Read(ref _collectedAt);
        if (allocated - last < Bytes || Interlocked.CompareExchange(ref _collectedAt, allocated, last) != last) return;
        GC.Collect(1, GCCollectionMode.Forced, blocking: true, compacting: false);
    }

    /// <summary>
    /// A full, compacting collection (large objects too), for the moment one phase's garbage is all dead and the next phase
    /// is about to allocate: the next phase then reuses that memory instead of adding to it (the restore's tree and index,
    /// read and planned, before its pack workers start). Tens of milliseconds.
    /// </summary>
    public static void CollectAll()
    {
        System.Runtime.GCSettings.LargeObjectHeapCompactionMode = System.Runtime.GCLargeObjectHeapCompactionMode.CompactOnce;
        GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
        Interlocked.Exchange(ref _collectedAt, GC.GetTotalAllocatedBytes());
    }
}
