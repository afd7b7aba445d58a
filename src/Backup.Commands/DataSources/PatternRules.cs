using Backup.Storage.Filtering;
using FluentValidation;

namespace Backup.Commands.DataSources;

/// <summary>Include/exclude lists the agent can honour: at most 64 patterns each, every one valid for <see cref="PathFilter"/>.</summary>
internal static class PatternRules
{
    public static void ValidPatterns<T>(this AbstractValidator<T> validator, System.Linq.Expressions.Expression<Func<T, IEnumerable<string>?>> list)
    {
        validator.RuleFor(list).Must(l => l == null || l.Count() <= PathFilter.MaxPatterns)
            .WithMessage($"'{{PropertyName}}' must hold at most {PathFilter.MaxPatterns} patterns.");
        validator.RuleForEach(list!).Must(p => PathFilter.Problem(p) is null)
            .WithMessage((_, pattern) => $"The pattern '{pattern}' {PathFilter.Problem(pattern)}.");
    }
}
