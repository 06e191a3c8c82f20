//! The generator's text: a seeded RNG, Zipf-distributed picks, English chat sentences from a
//! word list (function words first, then chat and work words, then a long tail of rarer
//! derived words), and Chinese/Japanese sentences from their own list.

/// SplitMix64: small, seeded, good enough for test data.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Picks ranks 0..n with probability proportional to 1 / (rank + 1)^s (Zipf).
pub struct Zipf {
    cumulative: Vec<f64>,
}

impl Zipf {
    pub fn new(n: usize, s: f64) -> Zipf {
        let mut total = 0.0;
        let cumulative = (0..n)
            .map(|r| {
                total += 1.0 / ((r + 1) as f64).powf(s);
                total
            })
            .collect::<Vec<_>>();
        Zipf {
            cumulative: cumulative.iter().map(|c| c / total).collect(),
        }
    }

    pub fn pick(&self, rng: &mut Rng) -> usize {
        let u = rng.unit();
        self.cumulative
            .partition_point(|c| *c < u)
            .min(self.cumulative.len() - 1)
    }
}

/// Function words: the most frequent, never searched for.
const FUNCTION: &str = "the to a and i is it you of in that for on we this be have with
    are not at so but was just can do if it's i'm from will my they or as me what there all
    your no an our be about up out by get should one now like then when us think know yes ok";

/// Chat and work words, roughly by how often a team chat uses them.
const COMMON: &str = "deploy build test fix release server meeting today tomorrow issue
    review branch merge update change team check looks good thanks please code bug error
    problem work time need new still done help sure week morning afternoon data database
    query index search message room user users client api request response latency slow fast
    cache memory disk network config setting feature design doc docs note notes plan sprint
    ticket priority customer support call lunch coffee weekend holiday friday monday tuesday
    wednesday thursday deadline demo launch rollback outage alert page incident postmortem
    metric metrics graph dashboard log logs trace debug crash restart upgrade migration
    schema table column backup restore cluster node nodes container image pipeline job jobs
    queue worker workers thread lock timeout retry limit quota budget cost invoice report
    email calendar invite slides draft proposal contract vendor partner marketing sales
    product roadmap goal goals estimate scope risk blocker question answer idea agree
    disagree maybe later soon yesterday tonight office remote home travel flight hotel
    train airport visa laptop monitor keyboard phone battery charger password account login
    token session browser mobile android ios web frontend backend service services endpoint
    payload json yaml script shell terminal editor linter formatter compiler rust python
    javascript typescript golang java kotlin swift ruby elixir haskell postgres sqlite redis
    kafka nginx docker kubernetes terraform ansible grafana prometheus sentry github gitlab
    jira confluence slack zoom figma notion spreadsheet budgetary quarterly annual revenue
    growth churn signup onboarding feedback survey interview hiring candidate offer salary
    manager engineer designer analyst intern contractor director meetup conference talk
    workshop training course book article blog podcast video stream recording transcript
    deployed deploying builds tested testing fixed fixing released releasing updated
    updating changed changing checked merged reviewed reviewing broken breaking working
    failed failing passed passing running stopped started starting finished waiting";

/// Roots of the rare tail: the tail is each prefix with each root, as in "reindexing".
const TAIL_PREFIXES: &str = "re un pre over under sub inter multi non auto micro hyper";
const TAIL_SUFFIXES: &str = "ing ed er able ness less ish";

/// Chinese and Japanese words (2-4 characters), most frequent first.
const CJK: &str = "今日 明日 会議 問題 確認 対応 資料 予定 時間 連絡 お願い 大丈夫 ありがとう
    了解 部署 東京 大阪 京都 北京 上海 香港 台北 服务器 数据库 测试 发布 部署 修复 需求
    设计 文档 开会 下午 上午 周末 客户 产品 项目 进度 版本 错误 日志 监控 告警 重启 升级
    迁移 备份 恢复 性能 延迟 缓存 网络 磁盘 内存 用户 消息 房间 搜索 索引 查询 接口 请求
    サーバー データベース テスト リリース デプロイ 修正 設計 仕様書 会議室 打ち合わせ
    障害 復旧 監視 通知 検索 索引 遅延 性能 メモリ ネットワーク 新幹線 出張 在宅勤務
    お疲れ様 よろしく 来週 先週 今週 午前 午後 金曜日 月曜日 締め切り 見積もり 契約
    営業 開発 運用 品質 改善 課題 報告 共有 相談 質問 回答 提案 承認 変更 追加 削除";

/// Particles and endings between Japanese/Chinese words.
const JOINERS: &[&str] = &[
    "の", "を", "に", "は", "で", "と", "が", "も", "的", "了", "在", "和", "です", "ます",
];

/// The vocabularies, built once.
pub struct Words {
    /// Every English word, function words first, then common, then the rare tail.
    pub english: Vec<String>,
    /// Where the common words start and the tail starts in `english`.
    pub common_start: usize,
    pub tail_start: usize,
    pub cjk: Vec<String>,
    english_zipf: Zipf,
    cjk_zipf: Zipf,
}

impl Words {
    pub fn new() -> Words {
        let function: Vec<String> = FUNCTION.split_whitespace().map(String::from).collect();
        let common: Vec<String> = COMMON.split_whitespace().map(String::from).collect();
        let mut tail = Vec::new();
        for root in COMMON.split_whitespace().take(240) {
            for prefix in TAIL_PREFIXES.split_whitespace() {
                tail.push(format!("{prefix}{root}"));
            }
            for suffix in TAIL_SUFFIXES.split_whitespace() {
                tail.push(format!("{root}{suffix}"));
            }
        }
        // A derived word that is a common word already ("deployed") is not rare.
        tail.retain(|w| !common.contains(w));
        tail.sort();
        tail.dedup();
        // Interleave so tail ranks do not follow the roots' order.
        let mut shuffle = Rng::new(7);
        for i in (1..tail.len()).rev() {
            tail.swap(i, shuffle.below(i + 1));
        }
        let common_start = function.len();
        let tail_start = common_start + common.len();
        let english: Vec<String> = function.into_iter().chain(common).chain(tail).collect();
        let cjk: Vec<String> = CJK.split_whitespace().map(String::from).collect();
        Words {
            english_zipf: Zipf::new(english.len(), 1.0),
            cjk_zipf: Zipf::new(cjk.len(), 0.9),
            english,
            common_start,
            tail_start,
            cjk,
        }
    }

    /// An English chat line of 4-20 words, capitalised, with some punctuation.
    pub fn english_sentence(&self, rng: &mut Rng) -> String {
        let n = 4 + rng.below(17);
        let mut out = String::with_capacity(n * 7);
        for i in 0..n {
            let w = &self.english[self.english_zipf.pick(rng)];
            if i == 0 {
                let mut chars = w.chars();
                if let Some(c) = chars.next() {
                    out.extend(c.to_uppercase());
                    out.push_str(chars.as_str());
                }
            } else {
                out.push(if rng.below(12) == 0 { ',' } else { ' ' });
                if out.ends_with(',') {
                    out.push(' ');
                }
                out.push_str(w);
            }
        }
        out.push(['.', '!', '?', '.'][rng.below(4)]);
        out
    }

    /// A Chinese or Japanese line: 3-9 words joined by particles.
    pub fn cjk_sentence(&self, rng: &mut Rng) -> String {
        let n = 3 + rng.below(7);
        let mut out = String::new();
        for i in 0..n {
            if i > 0 {
                out.push_str(JOINERS[rng.below(JOINERS.len())]);
            }
            out.push_str(&self.cjk[self.cjk_zipf.pick(rng)]);
        }
        out.push('。');
        out
    }

    /// A message body: ~10% Chinese/Japanese, the rest English.
    pub fn body(&self, rng: &mut Rng) -> String {
        if rng.below(10) == 0 {
            self.cjk_sentence(rng)
        } else {
            self.english_sentence(rng)
        }
    }
}
