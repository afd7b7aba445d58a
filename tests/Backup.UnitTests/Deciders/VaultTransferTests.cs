using Backup.Commands.Common;
using Backup.Commands.VaultTransfers;
using Backup.UnitTests.Support;

namespace Backup.UnitTests.Deciders;

public sealed class VaultTransferTests
{
    private static readonly Guid PointId = Guid.Parse("0195f3a0-0000-7000-8000-0000000000c1");
    private static readonly string PackA = new('a', 64);
    private static readonly string PackB = new('b', 64);

    private static VaultTransfer Fold(params object[] events) => events.Aggregate((VaultTransfer?)null, VaultTransfer.Next)!;

    private static VaultTransfer Started() => Fold(VaultTransfer.Start(null, PointId, 2, Clock.Now)!);

    [Fact]
    public void Transfer_id_is_the_same_for_every_worker_that_copies_a_point()
    {
        VaultTransfer.IdFor(PointId).ShouldBe(VaultTransfer.IdFor(Guid.Parse(PointId.ToString())));
        VaultTransfer.IdFor(PointId).ShouldNotBe(PointId);
    }

    [Fact]
    public void Different_points_get_different_transfers()
    {
        var ids = Enumerable.Range(0, 100).Select(_ => VaultTransfer.IdFor(Guid.NewGuid())).ToList();

        ids.Distinct().Count().ShouldBe(100);
        VaultTransfer.IdFor(PointId).ShouldNotBe(VaultTransfer.IdFor(Guid.Parse("0195f3a0-0000-7000-8000-0000000000c2")));
    }

    [Fact]
    public void First_start_opens_the_transfer_under_its_derived_id()
    {
        var started = VaultTransfer.Start(null, PointId, 2, Clock.Now);

        started.ShouldBe(new VaultTransferStarted(VaultTransfer.IdFor(PointId), PointId, 2, Clock.Now));
        var transfer = Fold(started!);
        transfer.Id.ShouldBe(VaultTransfer.IdFor(PointId));
        transfer.Attempts.ShouldBe(1);
        transfer.Completed.ShouldBeFalse();
    }

    [Fact]
    public void Unfinished_transfer_can_be_retried_and_keeps_what_was_uploaded()
    {
        var transfer = VaultTransfer.Next(Started(), new PackUploadedToVault(VaultTransfer.IdFor(PointId), PointId, PackA, 10, Clock.Now))!;

        var retry = VaultTransfer.Start(transfer, PointId, 2, Clock.Now.AddMinutes(1));

        retry.ShouldNotBeNull();
        var after = VaultTransfer.Next(transfer, retry)!;
        after.Attempts.ShouldBe(2);
        after.UploadedPacks.ShouldBe([PackA]);
    }

    [Fact]
    public void Completed_transfer_is_not_started_again()
    {
        var transfer = Started() with { UploadedPacks = new HashSet<string> { PackA, PackB } };
        var done = VaultTransfer.Next(transfer, VaultTransfer.Complete(transfer, [PackA, PackB], 30, Clock.Now))!;

        done.Completed.ShouldBeTrue();
        VaultTransfer.Start(done, PointId, 2, Clock.Now).ShouldBeNull();
    }

    [Fact]
    public void Upload_is_recorded_once_per_pack()
    {
        var transfer = Started();
        var first = VaultTransfer.RecordUpload(transfer, PackA, 10, Clock.Now);

        first.ShouldBe(new PackUploadedToVault(transfer.Id, PointId, PackA, 10, Clock.Now));
        var after = VaultTransfer.Next(transfer, first!)!;
        VaultTransfer.RecordUpload(after, PackA, 10, Clock.Now).ShouldBeNull();
        VaultTransfer.RecordUpload(after, PackB, 20, Clock.Now).ShouldNotBeNull();
    }

    [Fact]
    public void Transfer_cannot_complete_while_packs_are_missing_from_the_vault()
    {
        var transfer = VaultTransfer.Next(Started(), VaultTransfer.RecordUpload(Started(), PackA, 10, Clock.Now)!)!;

        var e = Should.Throw<ConflictException>(() => VaultTransfer.Complete(transfer, [PackA, PackB], 30, Clock.Now));
        e.Message.ShouldContain("1 pack(s)");
    }

    [Fact]
    public void Transfer_completes_once_every_pack_is_uploaded()
    {
        var transfer = Fold(
            VaultTransfer.Start(null, PointId, 2, Clock.Now)!,
            new PackUploadedToVault(VaultTransfer.IdFor(PointId), PointId, PackB, 20, Clock.Now),
            new PackUploadedToVault(VaultTransfer.IdFor(PointId), PointId, PackA, 10, Clock.Now));

        var completed = VaultTransfer.Complete(transfer, [PackA, PackB], 30, Clock.Now);

        completed.ShouldBe(new VaultTransferCompleted(VaultTransfer.IdFor(PointId), PointId, 2, 30, Clock.Now));
    }
}
