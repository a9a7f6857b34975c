//! The reference article of the archive format, as a model built by hand (not by the reader).

#![allow(dead_code)]

use chrono::{DateTime, Utc};
use gazette::{Document, Section};

pub const LINK: &str = "https://ft.com/content/e10b034d-ac25-476c-b3a5-c09aae8eb7f9";
pub const DESCRIPTION: &str = "Tuesday\u{2019}s meeting in Geneva part of \u{2018}intense diplomacy\u{2019} to head off danger of \u{2018}unintended conflict\u{2019}";
pub const EN_TITLE: &str =
    r#"US and China to hold first talks to reduce risk of AI ‘miscalculation’"#;
pub const ZH_TITLE: &str = r#"美国和中国将举行首次会谈以减少人工智能“误判”风险"#;
pub const EN_BODY: &str = r#"**US and Chinese officials** are set to meet in Geneva on Tuesday for the first round of a **dedicated dialogue on artificial intelligence (AI)**. This meeting is a follow-up to the summit between **Presidents Joe Biden and Xi Jinping in San Francisco** last year, where they agreed to engage in discussions on AI. US officials have emphasized that their approach to China involves "**investing, aligning, and competing**," alongside the belief that **intense competition necessitates intense diplomacy** to prevent potential conflicts, especially in the realm of rapidly advancing technologies like AI. 

The primary focus of these talks is to address the **risks and safety concerns** associated with advanced AI systems, with a particular emphasis on their **civilian and military applications**. The US aims to outline its position on managing AI risks and promoting safety norms and principles, while also expressing concerns about Chinese AI activities that may threaten American national security. China has prioritized AI development and is rapidly deploying capabilities that, according to a US official, could undermine the security of both the US and its allies. 

This dialogue is part of a broader effort to stabilize relations between the two powers, which have been strained by issues such as Chinese military activity around Taiwan and US restrictions on technology transfers, including **AI chips and machine tools**. While the talks are not designed to foster technical collaboration, both sides recognize the global risks associated with AI advancements and the need for responsible development and usage."#;
pub const ZH_BODY: &str = r#"**美国和中国官员**将于周二在瑞士日内瓦举行首次**人工智能（AI）专门对话**。本次会议是去年**乔·拜登总统和习近平主席在旧金山举行峰会**的后续行动，双方在峰会上同意就人工智能展开讨论。美国官员强调，他们对中国的态度涉及“**投资、统筹与竞争**”，同时认为激烈的竞争需要强有力的外交手段来预防潜在冲突，尤其是在人工智能等快速发展的技术领域。

这些会谈的主要焦点是解决与先进人工智能系统相关的**风险和安全问题**，尤其关注其**民用和军用应用**。美国旨在阐明其在管理人工智能风险和促进安全规范与原则方面的立场，同时也对中国的AI活动表达担忧，这些活动可能威胁到美国国家安全。中国一直优先发展人工智能，并迅速部署相关能力，据美国官员称，这些能力可能损害美国及其盟友的安全。

此次对话是美国和中国稳定两国关系的广泛努力的一部分，双边关系一直受到诸多问题的影响，包括中国在台湾海峡的军事活动和美国对技术转让的限制，如**人工智能芯片和机床**。虽然会谈的目的不是促进技术协作，但双方都认识到人工智能发展带来的全球风险，以及负责任地发展和使用人工智能的必要性。"#;

pub fn date() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2024-05-13T09:00:53.911Z")
        .expect("reference date")
        .with_timezone(&Utc)
}

fn section(language: &str, title: &str, body: &str) -> Section {
    Section {
        language: language.to_owned(),
        title: title.to_owned(),
        body: body.to_owned(),
    }
}

/// The model of `monolingual-en.md`.
pub fn monolingual() -> Document {
    Document {
        link: LINK.to_owned(),
        date: date(),
        description: DESCRIPTION.to_owned(),
        tags: vec!["world".to_owned()],
        author: "ft".to_owned(),
        translations: vec![],
        original: section("en", EN_TITLE, EN_BODY),
    }
}

/// The model of `bilingual-zh-en.md`: a Chinese translation above the English summary.
pub fn bilingual() -> Document {
    Document {
        translations: vec![section("zh", ZH_TITLE, ZH_BODY)],
        ..monolingual()
    }
}
