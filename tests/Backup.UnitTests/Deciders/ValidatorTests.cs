using Backup.Commands.Agents;
using Backup.Commands.DataSources;
using Backup.Commands.Dispatching;
using Backup.Commands.ProtectionGroups;
using Backup.Commands.RecoveryPoints;
using Backup.Commands.Restores;
using Backup.Storage.Contracts;
using FluentValidation.Results;

namespace Backup.UnitTests.Deciders;

public sealed class ValidatorTests
{
    private static readonly Guid AgentId = Guid.Parse("0195f3a0-0000-7000-8000-0000000000a1");
    private static readonly string PackId = new('a', 64);

    private static void ShouldFailOn(ValidationResult result, string property)
    {
        result.IsValid.ShouldBeFalse();
        result.Errors.Select(e => e.PropertyName).ShouldContain(property);
    }

    [Theory]
    [InlineData("/srv")]
    [InlineData("/")]
    [InlineData("/srv/data with spaces/ß")]
    [InlineData("C:\\Data")]
    [InlineData("d:/data")]
    public void Absolute_folder_on_linux_or_windows_can_be_protected(string path)
    {
        new AddDataSourceValidator().Validate(new AddDataSource(Guid.NewGuid(), AgentId, DataSourceKind.Folder, path)).IsValid.ShouldBeTrue();
    }

    [Theory]
    [InlineData("data")]
    [InlineData("./data")]
    [InlineData("../etc")]
    [InlineData("C:")]
    [InlineData("C:Data")]
    [InlineData("1:\\Data")]
    [InlineData("")]
    public void Relative_or_empty_path_is_rejected(string path)
    {
        var result = new AddDataSourceValidator().Validate(new AddDataSource(Guid.NewGuid(), AgentId, DataSourceKind.Folder, path));

        ShouldFailOn(result, nameof(AddDataSource.Path));
    }

    [Fact]
    public void Overlong_path_is_rejected()
    {
        var result = new AddDataSourceValidator().Validate(new AddDataSource(Guid.NewGuid(), AgentId, DataSourceKind.Folder, "/" + new string('x', 4096)));

        ShouldFailOn(result, nameof(AddDataSource.Path));
    }

    [Fact]
    public void Data_source_needs_a_known_kind()
    {
        ShouldFailOn(new AddDataSourceValidator().Validate(new AddDataSource(Guid.NewGuid(), AgentId, null, "/srv")), nameof(AddDataSource.Kind));
        ShouldFailOn(new AddDataSourceValidator().Validate(new AddDataSource(Guid.NewGuid(), AgentId, (DataSourceKind)42, "/srv")), nameof(AddDataSource.Kind));
    }

    [Fact]
    public void Data_source_needs_an_agent()
    {
        var result = new AddDataSourceValidator().Validate(new AddDataSource(Guid.NewGuid(), Guid.Empty, DataSourceKind.Folder, "/srv"));

        ShouldFailOn(result, nameof(AddDataSource.AgentId));
        result.Errors.Count.ShouldBe(1);
    }

    [Theory]
    [InlineData("")]
    [InlineData("   ")]
    [InlineData("\t\n")]
    public void Blank_group_name_is_rejected(string name)
    {
        ShouldFailOn(new CreateProtectionGroupValidator().Validate(new CreateProtectionGroup(name)), nameof(CreateProtectionGroup.Name));
    }

    [Fact]
    public void Group_name_is_limited_to_200_characters()
    {
        new CreateProtectionGroupValidator().Validate(new CreateProtectionGroup(new string('g', 200))).IsValid.ShouldBeTrue();
        ShouldFailOn(new CreateProtectionGroupValidator().Validate(new CreateProtectionGroup(new string('g', 201))), nameof(CreateProtectionGroup.Name));
    }

    [Fact]
    public void Valid_restore_request_passes()
    {
        new RequestRestoreValidator().Validate(new RequestRestore(Guid.NewGuid(), StorageTier.Disk, "/restore", "alice")).IsValid.ShouldBeTrue();
        new RequestRestoreValidator().Validate(new RequestRestore(Guid.NewGuid(), StorageTier.Vault, "E:\\Restore", "alice")).IsValid.ShouldBeTrue();
    }

    [Fact]
    public void Restore_needs_a_source()
    {
        ShouldFailOn(new RequestRestoreValidator().Validate(new RequestRestore(Guid.NewGuid(), null, "/restore", "alice")), nameof(RequestRestore.Source));
        ShouldFailOn(new RequestRestoreValidator().Validate(new RequestRestore(Guid.NewGuid(), (StorageTier)9, "/restore", "alice")), nameof(RequestRestore.Source));
    }

    [Theory]
    [InlineData("")]
    [InlineData("restore")]
    [InlineData("..\\restore")]
    public void Restore_target_must_be_absolute(string target)
    {
        ShouldFailOn(new RequestRestoreValidator().Validate(new RequestRestore(Guid.NewGuid(), StorageTier.Disk, target, "alice")), nameof(RequestRestore.TargetPath));
    }

    [Fact]
    public void Restore_needs_a_requester()
    {
        ShouldFailOn(new RequestRestoreValidator().Validate(new RequestRestore(Guid.NewGuid(), StorageTier.Disk, "/restore", "")), nameof(RequestRestore.RequestedBy));
    }

    [Theory]
    [InlineData("ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789")]
    [InlineData("abc")]
    [InlineData("../../../../etc/passwd")]
    public void Pack_upload_needs_a_lowercase_sha256_name(string packId)
    {
        ShouldFailOn(new WritePackToDiskValidator().Validate(Upload(packId)), nameof(WritePackToDisk.PackId));
    }

    // What a pack holds is read from its trailer by the store, so the upload only needs a well-formed name.
    [Fact]
    public void Pack_upload_with_a_lowercase_sha256_name_is_valid()
    {
        new WritePackToDiskValidator().Validate(Upload(PackId)).IsValid.ShouldBeTrue();
    }

    private static WritePackToDisk Upload(string packId) =>
        new(AgentId, JobKind.Backup, Guid.NewGuid(), packId, Stream.Null);

    private static CompleteBackup Completion(int files, int directories, long bytes, params string[] chunkIds) =>
        Completion(files, directories, [], bytes, chunkIds);

    private static CompleteBackup Completion(int files, int directories, IReadOnlyList<SkippedItemRecord> skipped, long bytes, params string[] chunkIds) =>
        new(AgentId, Guid.NewGuid(), files, directories, skipped, bytes, chunkIds, []);

    [Fact]
    public void Completed_backup_names_only_valid_chunk_ids()
    {
        new CompleteBackupValidator().Validate(Completion(1, 0, 10, PackId)).IsValid.ShouldBeTrue();
        ShouldFailOn(new CompleteBackupValidator().Validate(Completion(1, 0, 10, PackId, "nope")), "ChunkIds[1]");
        ShouldFailOn(new CompleteBackupValidator().Validate(Completion(1, 0, 10)), nameof(CompleteBackup.ChunkIds));
    }

    [Fact]
    public void Completed_backup_items_are_checked_one_by_one_and_the_answer_names_the_first_twenty_bad_ones()
    {
        var at = new DateTimeOffset(2026, 11, 1, 0, 0, 0, TimeSpan.Zero);
        var good = Enumerable.Range(0, 30_000).Select(i => new Backup.Commands.Cataloguing.CataloguedItem($"d{i % 300}/f{i}.txt", Backup.Storage.Format.EntryKind.File, i, at)).ToList();
        new CompleteBackupValidator().Validate(Completion(1, 0, 10, PackId) with { Items = good }).IsValid.ShouldBeTrue();

        var bad = good.Select((item, i) => i % 2 == 1 ? item with { Path = $"../{item.Path}" } : item).ToList();
        bad[0] = bad[2] with { };
        var result = new CompleteBackupValidator().Validate(Completion(1, 0, 10, PackId) with { Items = bad });
        result.Errors.Count.ShouldBe(20);
        result.Errors[0].PropertyName.ShouldBe("Items[1].Path");
        result.Errors[1].PropertyName.ShouldBe("Items[2].Path"); // the same path as Items[0]
        result.Errors[1].ErrorMessage.ShouldContain("appear once");
        result.Errors[2].PropertyName.ShouldBe("Items[3].Path");
    }

    [Fact]
    public void Completed_backup_counts_cannot_be_negative()
    {
        var result = new CompleteBackupValidator().Validate(Completion(-1, -1, -1, PackId));

        result.Errors.Select(e => e.PropertyName).ShouldBe(
            [nameof(CompleteBackup.Files), nameof(CompleteBackup.Directories), nameof(CompleteBackup.BytesRead)], ignoreOrder: true);
    }

    [Fact]
    public void Skipped_items_need_a_path_and_a_reason()
    {
        new CompleteBackupValidator().Validate(Completion(1, 0, [new SkippedItemRecord("a/b", "Permission denied")], 10, PackId)).IsValid.ShouldBeTrue();
        var result = new CompleteBackupValidator().Validate(Completion(1, 0, [new SkippedItemRecord("", "x"), new SkippedItemRecord("c", "")], 10, PackId));
        result.Errors.Select(e => e.PropertyName).ShouldBe(["Skipped[0].Path", "Skipped[1].Reason"], ignoreOrder: true);
    }

    [Theory]
    [InlineData(0, false)]
    [InlineData(1, true)]
    [InlineData(7 * 24 * 60, true)]
    [InlineData(7 * 24 * 60 + 1, false)]
    public void Enrolment_token_lives_between_a_minute_and_a_week(int minutes, bool valid)
    {
        new IssueEnrolmentTokenValidator().Validate(new IssueEnrolmentToken(minutes)).IsValid.ShouldBe(valid);
    }

    [Fact]
    public void Enrolment_needs_a_token_and_a_machine_name()
    {
        ShouldFailOn(new EnrolAgentValidator().Validate(new EnrolAgent("", "web-01")), nameof(EnrolAgent.Token));
        ShouldFailOn(new EnrolAgentValidator().Validate(new EnrolAgent("t.s", "")), nameof(EnrolAgent.MachineName));
        ShouldFailOn(new EnrolAgentValidator().Validate(new EnrolAgent("t.s", new string('m', 254))), nameof(EnrolAgent.MachineName));
    }

    [Fact]
    public void Failures_need_a_reason()
    {
        ShouldFailOn(new FailJobValidator().Validate(new FailJob(AgentId, JobKind.Backup, Guid.NewGuid(), "")), nameof(FailJob.Reason));
        ShouldFailOn(new FailJobValidator().Validate(new FailJob(AgentId, JobKind.Restore, Guid.NewGuid(), "")), nameof(FailJob.Reason));
        new FailJobValidator().Validate(new FailJob(AgentId, JobKind.Restore, Guid.NewGuid(), "disk full")).IsValid.ShouldBeTrue();
    }

    [Fact]
    public void Restore_totals_cannot_be_negative()
    {
        ShouldFailOn(new CompleteRestoreValidator().Validate(new CompleteRestore(AgentId, Guid.NewGuid(), -1, 0)), nameof(CompleteRestore.Files));
        ShouldFailOn(new CompleteRestoreValidator().Validate(new CompleteRestore(AgentId, Guid.NewGuid(), 0, -1)), nameof(CompleteRestore.Bytes));
    }

    [Fact]
    public void Backup_request_needs_a_data_source_and_a_requester()
    {
        ShouldFailOn(new RequestBackupValidator().Validate(new RequestBackup(Guid.Empty, "alice")), nameof(RequestBackup.DataSourceId));
        ShouldFailOn(new RequestBackupValidator().Validate(new RequestBackup(Guid.NewGuid(), "")), nameof(RequestBackup.RequestedBy));
    }
}
