//! Pipeline-level tests on small repositories written to temp dirs.

use super::*;
use std::path::Path;

fn repo(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (p, t) in files {
        let path = dir.path().join(p);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, t).unwrap();
    }
    dir
}

fn load(files: &[(&str, &str)]) -> Result<Pipeline, SourceError> {
    let d = repo(files);
    Pipeline::load_in(d.path(), &d.path().join(files[0].0))
}

fn texts(lines: &[ScriptLine]) -> Vec<&str> {
    lines.iter().map(|l| l.text.as_str()).collect()
}

fn written<'p>(p: &'p Pipeline, o: &Origin) -> &'p str {
    &p.files[o.file].text[o.span.clone()]
}

#[test]
fn extends_deep_merges_across_files_and_levels() {
    let p = load(&[
        (
            ".gitlab-ci.yml",
            "include: ci/templates.yml\nbuild:\n  extends: .kaniko-cached\n  variables:\n    IMAGE: app\n  script:\n    - /kaniko/executor --destination $IMAGE\n",
        ),
        (
            "ci/templates.yml",
            ".kaniko:\n  stage: build\n  image:\n    name: gcr.io/kaniko-project/executor:debug\n    entrypoint: [\"\"]\n  variables:\n    A: '1'\n    IMAGE: base\n  script: [echo base]\n.kaniko-cached:\n  extends: .kaniko\n  variables:\n    CACHE: 'true'\n",
        ),
    ])
    .unwrap();
    let job = p.job("build").unwrap();
    assert_eq!(job.ancestors, [".kaniko-cached", ".kaniko"]);
    assert_eq!(job.stage.as_ref().unwrap().value, "build");
    let vars: Vec<_> = job
        .variables
        .iter()
        .map(|v| (v.name.as_str(), v.value.as_ref().unwrap().value.as_str()))
        .collect();
    assert_eq!(vars, [("A", "1"), ("IMAGE", "app"), ("CACHE", "true")]);
    // Arrays are replaced, not appended.
    assert_eq!(
        texts(&job.script),
        ["/kaniko/executor --destination $IMAGE"]
    );
    let image = job.image.as_ref().unwrap();
    assert_eq!(image.name.value, "gcr.io/kaniko-project/executor:debug");
    // The image is written in the template file, inside `.kaniko`.
    assert_eq!(image.name.origin.owner.as_deref(), Some(".kaniko"));
    assert!(
        p.files[image.name.origin.file]
            .path
            .ends_with("ci/templates.yml")
    );
    assert_eq!(
        written(&p, &image.name.origin),
        "gcr.io/kaniko-project/executor:debug"
    );
    assert_eq!(image.entrypoint.as_ref().unwrap()[0].value, "");
    assert!(!job.hidden && p.job(".kaniko").unwrap().hidden);
}

#[test]
fn a_template_used_twice_points_both_jobs_at_one_definition() {
    let p = load(&[(
        ".gitlab-ci.yml",
        ".build: &build\n  image: gcr.io/kaniko-project/executor:debug\n  script:\n    - /kaniko/executor --destination $CI_REGISTRY_IMAGE/$NAME\na:\n  <<: *build\n  variables: {NAME: a}\nb:\n  extends: .build\n  variables: {NAME: b}\n",
    )])
    .unwrap();
    let a = &p.job("a").unwrap().script[0];
    let b = &p.job("b").unwrap().script[0];
    assert_eq!(a.origin, b.origin);
    assert_eq!(a.origin.owner.as_deref(), Some(".build"));
    let users: Vec<_> = p.users_of(".build").map(|j| j.name.as_str()).collect();
    assert_eq!(users, ["b"]);
}

#[test]
fn anchored_script_lists_are_spliced_and_flattened() {
    let src = ".setup: &setup\n  - mkdir -p /kaniko/.docker\n  - echo \"$AUTH\" > /kaniko/.docker/config.json\njob:\n  script:\n    - *setup\n    - - nested\n    - >-\n      /kaniko/executor\n      --context .\n";
    let p = load(&[(".gitlab-ci.yml", src)]).unwrap();
    let job = p.job("job").unwrap();
    assert_eq!(
        texts(&job.script),
        [
            "mkdir -p /kaniko/.docker",
            "echo \"$AUTH\" > /kaniko/.docker/config.json",
            "nested",
            "/kaniko/executor --context ."
        ]
    );
    assert_eq!(job.script[0].origin.owner.as_deref(), Some(".setup"));
    // A folded line maps its words back to the source.
    let line = &job.script[3];
    let at = line.text.find("--context").unwrap();
    let r = line.source_range(at..at + "--context .".len());
    assert_eq!(&src[r.start..r.start + 9], "--context");
    assert!(src[r].ends_with('.'));
}

#[test]
fn references_resolve_after_extends() {
    let p = load(&[(
        ".gitlab-ci.yml",
        ".auth:\n  before_script:\n    - echo login\n.base:\n  script: [echo base]\n.child:\n  extends: .base\njob:\n  before_script:\n    - !reference [.auth, before_script]\n    - echo own\n  script: !reference [.child, script]\n",
    )])
    .unwrap();
    let job = p.job("job").unwrap();
    assert_eq!(texts(&job.before_script), ["echo login", "echo own"]);
    assert_eq!(texts(&job.script), ["echo base"]);
    assert_eq!(job.before_script[0].origin.owner.as_deref(), Some(".auth"));
}

#[test]
fn defaults_are_inherited_unless_switched_off() {
    let p = load(&[(
        ".gitlab-ci.yml",
        "variables:\n  GLOBAL: g\n  OTHER: o\ndefault:\n  image: gcr.io/kaniko-project/executor:v1.23.2-debug\n  before_script: [echo default]\nkaniko:\n  script: [executor --destination x]\nplain:\n  inherit:\n    default: false\n    variables: [GLOBAL]\n  script: [make]\npartial:\n  inherit:\n    default: [image]\n  script: [make]\n",
    )])
    .unwrap();
    let k = p.job("kaniko").unwrap();
    assert!(k.image.as_ref().unwrap().from_default);
    assert_eq!(texts(&k.before_script), ["echo default"]);
    assert!(k.before_script[0].from_default);
    assert_eq!(k.variable("OTHER"), Some("o"));
    let plain = p.job("plain").unwrap();
    assert!(plain.image.is_none() && plain.before_script.is_empty());
    assert_eq!(plain.variable("GLOBAL"), Some("g"));
    assert_eq!(plain.variable("OTHER"), None);
    let partial = p.job("partial").unwrap();
    assert!(partial.image.is_some() && partial.before_script.is_empty());

    let images = ImageMatcher::builtin();
    let kaniko: Vec<_> = p
        .kaniko_jobs(images)
        .iter()
        .map(|(j, _)| j.name.clone())
        .collect();
    assert_eq!(kaniko, ["kaniko", "partial"]);
    let (_, use_) = &p.kaniko_jobs(images)[0];
    // Bare `executor` counts under a Kaniko image.
    assert_eq!(use_.calls.len(), 1);
}

#[test]
fn executor_calls_are_found_in_shell_text_only() {
    let src = "build:\n  image: alpine\n  script:\n    - echo \"/kaniko/executor --help\"\n    - |\n      # /kaniko/executor in a comment\n      if [ -n \"$X\" ]; then\n        /kaniko/executor --destination a\n      fi\n    - /kaniko/executor --destination b && echo ok\n";
    let p = load(&[(".gitlab-ci.yml", src)]).unwrap();
    let job = p.job("build").unwrap();
    let calls = detect::executor_calls(job, ImageMatcher::builtin());
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].line, 1);
    assert_eq!(calls[0].command.nesting, crate::shell::Nesting::Conditional);
    assert_eq!(calls[1].line, 2);
    assert_eq!(calls[1].command.nesting, crate::shell::Nesting::TopLevel);
    // Word spans map to the file.
    let line = calls[0].script_line(job);
    let dest = &calls[0].args()[1];
    assert_eq!(&src[line.source_range(dest.span.clone())], "a");
}

#[test]
fn conditionals_split_across_list_items_keep_their_nesting() {
    let p = load(&[(
        ".gitlab-ci.yml",
        "job:\n  script:\n    - if [ \"$T\" ]; then\n    - /kaniko/executor --destination a\n    - fi\n",
    )])
    .unwrap();
    let calls = detect::executor_calls(p.job("job").unwrap(), ImageMatcher::builtin());
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].line, 1);
    assert_eq!(calls[0].command.nesting, crate::shell::Nesting::Conditional);
}

#[test]
fn image_from_a_variable_is_resolved_for_matching() {
    let p = load(&[(
        ".gitlab-ci.yml",
        "variables:\n  KANIKO_IMAGE: gcr.io/kaniko-project/executor:debug\njob:\n  image: $KANIKO_IMAGE\n  script: [make]\n",
    )])
    .unwrap();
    assert_eq!(p.kaniko_jobs(ImageMatcher::builtin()).len(), 1);
}

#[test]
fn component_files_keep_inputs_verbatim() {
    let p = load(&[(
        "templates/kaniko.yml",
        "spec:\n  inputs:\n    image:\n      default: app\n---\n\"$[[ inputs.job ]]\":\n  image: gcr.io/kaniko-project/executor:debug\n  script:\n    - /kaniko/executor --destination $CI_REGISTRY_IMAGE/$[[ inputs.image ]]\n",
    )])
    .unwrap();
    let job = &p.jobs[0];
    assert_eq!(job.name, "$[[ inputs.job ]]");
    assert!(job.script[0].text.ends_with("$[[ inputs.image ]]"));
}

#[test]
fn unfollowed_includes_are_listed() {
    let p = load(&[(
        ".gitlab-ci.yml",
        "include:\n  - project: infra/ci\n    file: kaniko.yml\n  - template: Jobs/Build.gitlab-ci.yml\njob:\n  script: [make]\n",
    )])
    .unwrap();
    let names: Vec<_> = p
        .unfollowed_includes()
        .map(|i| i.location.as_str())
        .collect();
    assert_eq!(names, ["infra/ci:kaniko.yml", "Jobs/Build.gitlab-ci.yml"]);
}

#[test]
fn job_graph_keys_are_read() {
    let p = load(&[(
        ".gitlab-ci.yml",
        "stages: [build, deploy]\nbuild: {stage: build, script: [make]}\ndeploy:\n  stage: deploy\n  needs: [build, {job: other, artifacts: false}]\n  dependencies: [build]\n  script: [make]\n",
    )])
    .unwrap();
    assert_eq!(p.stages, ["build", "deploy"]);
    let d = p.job("deploy").unwrap();
    let needs: Vec<_> = d.needs.iter().map(|n| n.value.as_str()).collect();
    assert_eq!(needs, ["build", "other"]);
    assert_eq!(d.dependencies[0].value, "build");
}

#[test]
fn bad_inputs_are_located_errors() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "a:\n  extends: .b\n  script: [x]\n.b:\n  extends: a\n",
            "cycle",
            ":5:",
        ),
        (
            "a:\n  script:\n    - key: value\n",
            "must be strings",
            ":3:",
        ),
        ("a: just a string\n", "must be a mapping", ":1:"),
        ("a:\n  image: [x]\n  script: [x]\n", "`image`", ":2:"),
        ("default: [x]\n", "`default:`", ":1:"),
    ];
    for (src, needle, pos) in cases {
        let e = load(&[(".gitlab-ci.yml", src)]).unwrap_err();
        let shown = e.to_string();
        assert!(shown.contains(needle), "{src:?}: {shown}");
        assert!(
            shown.contains(&format!(".gitlab-ci.yml{pos}")),
            "{src:?}: {shown}"
        );
        assert!(e.help.is_some(), "{src:?}: no help");
    }
}

#[test]
fn undefined_templates_in_a_whole_pipeline_are_error_findings() {
    // GitLab rejects these pipelines; kmigrate names the template where
    // it is written and still checks the jobs (issue 15 item 3).
    for (src, what) in [
        ("a:\n  extends: .missing\n  script: [x]\n", "`.missing`"),
        (
            "a:\n  script: !reference [.nope, script]\n",
            "`!reference [.nope, script]`",
        ),
    ] {
        let p = load(&[(".gitlab-ci.yml", src)]).unwrap();
        assert!(p.complete);
        let a = p.job("a").unwrap();
        assert_eq!(
            a.unresolved_extends.len() + a.unresolved_references.len(),
            1
        );
        let ff = findings::check(&p, &target::Options::default());
        let all: Vec<_> = ff.iter().flat_map(|f| &f.findings).collect();
        assert_eq!(all.len(), 1, "{all:?}");
        let f = all[0];
        assert_eq!(
            (f.rule.id(), f.severity),
            ("KM014", crate::rules::Severity::Error)
        );
        assert!(f.message.contains(what), "{}", f.message);
        assert!(f.message.contains("GitLab rejects it"), "{}", f.message);
        assert_eq!(p.files[0].position(f.span.start).0, 2);
    }
}

#[test]
fn the_entry_text_can_come_from_memory() {
    let d = repo(&[("ci/x.yml", "x: {script: [make]}\n")]);
    let p = Pipeline::from_text(
        d.path(),
        Path::new(".gitlab-ci.yml"),
        "include: ci/x.yml\n".into(),
    )
    .unwrap();
    assert_eq!(p.jobs[0].name, "x");
}

#[test]
fn partial_pipelines_record_unknown_extends_instead_of_failing() {
    // A fragment (not `.gitlab-ci.yml`) extending a template from elsewhere.
    let p = load(&[(
        "ci/build.yml",
        "build:\n  extends: [.kaniko_base, .local]\n  variables:\n    KANIKO_DESTINATION: x\n.local:\n  stage: build\n",
    )])
    .unwrap();
    let job = p.job("build").unwrap();
    let missing: Vec<_> = job
        .unresolved_extends
        .iter()
        .map(|l| l.value.as_str())
        .collect();
    assert_eq!(missing, [".kaniko_base"]);
    assert_eq!(job.stage.as_ref().unwrap().value, "build");
    // The same in a full `.gitlab-ci.yml` with a remote include.
    let p = load(&[(
        ".gitlab-ci.yml",
        "include:\n  - remote: https://example.com/kaniko.yml\nbuild:\n  extends: .kaniko_base\n",
    )])
    .unwrap();
    assert_eq!(p.job("build").unwrap().unresolved_extends.len(), 1);
}

#[test]
fn an_included_file_is_judged_as_part_of_its_pipeline() {
    let d = repo(&[
        (
            ".gitlab-ci.yml",
            "include: ci/k.yml\napi:\n  extends: .k\n  variables: {APP: api}\n",
        ),
        (
            "ci/k.yml",
            ".k:\n  image: gcr.io/kaniko-project/executor:debug\n  script:\n    - /kaniko/executor --context $APP --destination $CI_REGISTRY_IMAGE/$APP\n",
        ),
    ]);
    let opts = crate::options::Options::default();
    let k = SourceFile::load(&d.path().join("ci/k.yml")).unwrap();
    let in_template = file_findings(&k, &opts).unwrap();
    let km001 = in_template
        .iter()
        .find(|f| f.rule == crate::rules::Rule::Km001)
        .unwrap();
    // Judged through the job `api` that uses it, not as a lone template.
    assert!(km001.message.contains("`api`"), "{}", km001.message);
    assert!(km001.fix.is_some());
    let entry = SourceFile::load(&d.path().join(".gitlab-ci.yml")).unwrap();
    let in_entry = file_findings(&entry, &opts).unwrap();
    let mut rules: Vec<_> = in_entry.iter().map(|f| f.rule.id()).collect();
    rules.sort();
    assert_eq!(rules, ["KM004", "KM014"]);
    assert!(
        in_entry
            .iter()
            .any(|f| f.rule == crate::rules::Rule::Km014 && f.message.contains("ci/k.yml"))
    );
    // An unknown GitLab target cannot reach the engine: `Target` is the
    // only spelling (config and CLI reject other names, see config tests).
}

#[test]
fn odd_inputs_never_panic() {
    let inputs = [
        "",
        "# only a comment\n",
        "include:\n",
        "default:\n",
        "j:\n  script: ''\n",
        "j:\n  image: ''\n  script: [x]\n",
        "j:\n  extends: []\n  script: [x]\n",
        "j:\n  needs:\n  script: [x]\n",
        "j:\n  script: !reference []\n",
        "j:\n  image: gcr.io/kaniko-project/executor:debug\n  script: [/kaniko/executor]\n",
        "j:\n  image: gcr.io/kaniko-project/executor:debug\n  script:\n    - A=1 \\\n    - /kaniko/executor --context .\n",
        "j:\n  image: gcr.io/kaniko-project/executor:debug\n  script:\n    - /kaniko/executor --destination \"unterminated\n",
        "j:\n  image: gcr.io/kaniko-project/executor:debug\n  script:\n    - /kaniko/executor -d\n    - /kaniko/executor --cache=true -d a --cache=true -d b\n",
        "j: {image: gcr.io/kaniko-project/executor:debug, script: [/kaniko/executor -d a --cache=true, /kaniko/executor -d b --cache=true]}\n",
        "j:\n  image: {name: gcr.io/kaniko-project/executor:debug}\n  services: docker:dind\n  variables: [a]\n  script: [/kaniko/executor -d a]\n",
        ".t: &t\n  script: [/kaniko/executor -d a]\nj:\n  <<: *t\n  image: gcr.io/kaniko-project/executor:debug\n",
        "j:\n  image: gcr.io/kaniko-project/executor:debug\n  script:\n    - exec /kaniko/executor -d é/ü --context ./ü\n",
    ];
    for target in [
        target::Target::Buildx,
        target::Target::Buildkit,
        target::Target::Split,
    ] {
        let opts = target::Options {
            target,
            ..target::Options::default()
        };
        for src in inputs {
            if let Ok(p) = Pipeline::from_text(
                Path::new("/nonexistent"),
                Path::new(".gitlab-ci.yml"),
                src.into(),
            ) {
                let ff = findings::check(&p, &opts);
                if let Ok(texts) = findings::fixed_texts(&p, &ff) {
                    for (_, t) in texts {
                        SourceFile::from_text(Path::new("x.yml"), t.clone())
                            .unwrap_or_else(|e| panic!("{src:?} → unparsable {t:?}: {e}"));
                    }
                }
            }
        }
    }
}

#[test]
fn unknown_references_in_image_and_default_are_findings_and_kept() {
    let src = "default:\n  before_script: !reference [.setup, before_script]\nb:\n  image: !reference [.img, image]\n  script:\n    - /kaniko/executor --destination r.example.com/a\n";
    let p = load(&[("ci/x.yml", src)]).unwrap();
    assert!(!p.complete);
    assert_eq!(p.global_references.len(), 1);
    let b = p.job("b").unwrap();
    assert!(b.image.is_none());
    assert_eq!(b.unresolved_references[0].value, "[.img, image]");
    let ff = findings::check(&p, &target::Options::default());
    let all: Vec<_> = ff.iter().flat_map(|f| &f.findings).collect();
    let km014 = all
        .iter()
        .filter(|f| f.rule == crate::rules::Rule::Km014)
        .count();
    assert_eq!(km014, 2, "{all:?}");
    let texts = findings::fixed_texts(&p, &ff).unwrap();
    let text = &texts[0].1;
    // The default's unknown lines still run: no `before_script` of the
    // job's own replaces them, and both references stay.
    assert!(!text.contains("  before_script:\n    - "), "{text}");
    assert!(
        text.contains("!reference [.setup, before_script]"),
        "{text}"
    );
    assert!(text.contains("docker buildx build"), "{text}");
}
