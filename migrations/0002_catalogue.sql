-- The catalogue: tiers, styles and our own prompt texts. Prices are in kopecks.
INSERT INTO tiers (id, photos, amount_kopecks, title, sort_order) VALUES
    ('starter', 7, 49900, 'Starter: 7 portraits', 1),
    ('standard', 15, 99900, 'Standard: 15 portraits', 2),
    ('premium', 23, 149900, 'Premium: 23 portraits', 3);

INSERT INTO styles (id, name, description, sort_order) VALUES
    ('pinglass', 'PinGlass', 'A varied set of lifestyle, studio and artistic portraits', 1),
    ('business', 'Business', 'Professional portraits for profiles and company pages', 2);

INSERT INTO prompts (style_id, position, text) VALUES
    ('pinglass', 0, 'Editorial studio portrait of the person from the reference photos, soft key light from the left, charcoal seamless backdrop, natural skin texture, 85mm lens look'),
    ('pinglass', 1, 'The person from the reference photos walking through an autumn park at golden hour, warm backlight through maple leaves, relaxed smile, shallow depth of field'),
    ('pinglass', 2, 'Business headshot of the person from the reference photos in a tailored navy jacket, bright modern office softly blurred behind, confident and approachable expression'),
    ('pinglass', 3, 'The person from the reference photos on a rooftop terrace at dusk, city lights starting to glow below, light breeze in the hair, cinematic teal and amber tones'),
    ('pinglass', 4, 'Black and white fine-art portrait of the person from the reference photos, dramatic side light, deep shadows, thoughtful gaze slightly away from the camera'),
    ('pinglass', 5, 'The person from the reference photos reading in a cosy library corner, wooden shelves, a cup of tea on the armrest, warm lamp light, candid moment'),
    ('pinglass', 6, 'The person from the reference photos by the sea on a windy morning, light linen clothes, pastel sky, waves softly out of focus, fresh airy colours'),
    ('pinglass', 7, 'Fashion magazine cover style portrait of the person from the reference photos, bold colour-blocked background, crisp beauty lighting, elegant pose'),
    ('pinglass', 8, 'The person from the reference photos in a snowy pine forest, knitted scarf, falling snowflakes caught in the light, breath visible in the cold air'),
    ('pinglass', 9, 'The person from the reference photos at a Parisian street cafe, croissant and espresso on a marble table, morning sun, charming candid laugh'),
    ('pinglass', 10, 'Moody film-noir portrait of the person from the reference photos, venetian blind shadows across the face, smoky atmosphere, 1940s styling'),
    ('pinglass', 11, 'The person from the reference photos hiking on a mountain ridge, sweeping valley view, sporty outfit, late afternoon sun, sense of achievement'),
    ('pinglass', 12, 'The person from the reference photos in a sunlit flower field, wildflowers up to the waist, soft dreamy haze, gentle natural expression'),
    ('pinglass', 13, 'Neon-lit night portrait of the person from the reference photos on a rainy street, reflections on wet asphalt, magenta and cyan glow, urban mood'),
    ('pinglass', 14, 'The person from the reference photos as a chef in a bright modern kitchen, plating a colourful dish, focused yet happy, clean commercial lighting'),
    ('pinglass', 15, 'Classic oil-painting style portrait of the person from the reference photos, Rembrandt lighting, rich dark background, visible brush texture'),
    ('pinglass', 16, 'The person from the reference photos on a vintage bicycle along a tree-lined boulevard, summer dress code, dappled sunlight, carefree motion'),
    ('pinglass', 17, 'The person from the reference photos in an art gallery, standing before a large abstract canvas, minimalist white space, calm curious look'),
    ('pinglass', 18, 'Cosy winter home portrait of the person from the reference photos by a fireplace, chunky knit sweater, fairy lights, warm orange glow'),
    ('pinglass', 19, 'The person from the reference photos on a yacht deck in the Mediterranean, turquoise water, bright midday sun, relaxed holiday style'),
    ('pinglass', 20, 'Retro 1970s style portrait of the person from the reference photos, film grain, warm faded colours, patterned shirt, vintage room interior'),
    ('pinglass', 21, 'The person from the reference photos as a jazz musician on a small club stage, spotlight, saxophone in hand, smoky blue background'),
    ('pinglass', 22, 'The person from the reference photos in a botanical greenhouse, lush tropical leaves around, humid soft light, serene and content'),
    ('pinglass', 23, 'Minimalist high-key portrait of the person from the reference photos, pure white background, soft even light, clean modern look, gentle smile'),
    ('pinglass', 24, 'The person from the reference photos watching the sunset from a desert dune, long shadows, warm orange sky, flowing scarf in the wind'),
    ('business', 0, 'Corporate headshot of the person from the reference photos, light grey backdrop, soft even studio light, tailored suit, trustworthy expression'),
    ('business', 1, 'The person from the reference photos leading a meeting in a glass-walled conference room, daylight, engaged and confident posture'),
    ('business', 2, 'The person from the reference photos working on a laptop in a modern coworking space, plants and wood accents, natural window light'),
    ('business', 3, 'The person from the reference photos standing with arms crossed in front of a city skyline, smart casual outfit, golden hour'),
    ('business', 4, 'The person from the reference photos speaking on a conference stage, stage lights, audience softly blurred, inspiring gesture'),
    ('business', 5, 'The person from the reference photos in a bright home office, bookshelf behind, video-call ready framing, friendly smile'),
    ('business', 6, 'Black and white executive portrait of the person from the reference photos, strong contrast, dark background, calm authority');

-- New payments use the test terminal until an admin switches (pinglass settings tbank-mode).
INSERT INTO settings (key, value) VALUES ('tbank_mode', 'test');
